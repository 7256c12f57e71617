// HTML building blocks of `workflow serve` (see html.hpp).
#include "html.hpp"

#include <fmt/core.h>

#include <cctype>

namespace workflow::serve {

std::string escape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 16);
  for (const char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string url_encode(std::string_view s) {
  std::string out;
  for (const unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~')
      out += static_cast<char>(c);
    else
      out += fmt::format("%{:02X}", c);
  }
  return out;
}

std::string text_of(const json& v) {
  if (v.is_null()) return "";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_float()) return fmt::format("{:.2f}", v.get<double>());
  return v.dump();
}

Column::Column(std::string t, std::string key)
    : title(std::move(t)),
      cell([key = std::move(key)](const json& row) {
        return escape(text_of(row.contains(key) ? row.at(key) : json()));
      }) {}

Column::Column(std::string t, std::function<std::string(const json& row)> f)
    : title(std::move(t)), cell(std::move(f)) {}

std::string table(const json& rows, const std::vector<Column>& columns, std::string_view empty) {
  if (!rows.is_array() || rows.empty()) return fmt::format("<p class=\"empty\">{}</p>", escape(empty));
  std::string out = "<table><thead><tr>";
  for (const auto& c : columns) out += "<th>" + escape(c.title) + "</th>";
  out += "</tr></thead><tbody>";
  for (const auto& row : rows) {
    out += "<tr>";
    for (const auto& c : columns) out += "<td>" + c.cell(row) + "</td>";
    out += "</tr>";
  }
  return out + "</tbody></table>";
}

std::string job_link(const std::string& job_id) {
  return fmt::format("<a href=\"/job?id={}\">{}</a>", escape(url_encode(job_id)), escape(job_id));
}

std::string action_button(std::string_view action, const json& data, std::string_view label) {
  return fmt::format("<button class=\"action\" data-action=\"{}\" data-args=\"{}\">{}</button>",
                     escape(action), escape(data.dump()), escape(label));
}

std::string error_box(std::string_view message) {
  return fmt::format("<p class=\"error\">{}</p>", escape(message));
}

std::string live_panel(std::string_view id, std::string_view src, std::string_view content) {
  return fmt::format("<div id=\"{}\" class=\"live\" data-live=\"{}\">{}</div>", escape(id),
                     escape(src), content);
}

std::string page(const Layout& layout, std::string_view title, std::string_view body) {
  std::string token;
  if (layout.actions)
    token =
        "<span class=\"token\"><label>action token <input id=\"token\" type=\"password\" "
        "autocomplete=\"off\"></label></span>";
  return fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
      "<title>{} · workflow</title><link rel=\"stylesheet\" href=\"/static/dashboard.css\">"
      "<script src=\"/static/dashboard.js\" defer></script></head>"
      "<body data-refresh-ms=\"{}\"><header><strong>workflow</strong><nav>"
      "<a href=\"/\">jobs</a><a href=\"/failures\">failures</a><a href=\"/queues\">queues</a>"
      "<a href=\"/history\">audit history</a><a href=\"/survey\">survey</a>"
      "<a href=\"/metrics\">metrics</a></nav>{}</header>"
      "<main><h1>{}</h1><p id=\"action-result\" role=\"status\"></p>{}</main></body></html>\n",
      escape(title), layout.refresh_ms, token, escape(title), body);
}

}  // namespace workflow::serve
