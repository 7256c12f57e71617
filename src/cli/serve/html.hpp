// HTML building blocks of `workflow serve`: escaping (every value the
// dashboard shows is user data: job ids, parameters, errors), URL encoding,
// tables from JSON rows, and the page layout. Nothing is rendered unescaped
// except markup built here from escaped parts.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace workflow::serve {

using json = nlohmann::json;

// Text for an HTML text node or a quoted attribute value: & < > " ' escaped.
std::string escape(std::string_view s);
// A query-string component: everything but unreserved characters %-encoded.
std::string url_encode(std::string_view s);
// A JSON scalar as text ("" for null; strings without quotes; objects as JSON).
std::string text_of(const json& v);

// One column of a table: its title and how a row's cell is rendered (HTML,
// escaped by the renderer). Column("title", "key") shows row[key] as text.
struct Column {
  std::string title;
  std::function<std::string(const json& row)> cell;
  Column(std::string t, std::string key);
  Column(std::string t, std::function<std::string(const json& row)> f);
};
// A <table> of `rows` (a JSON array of objects); `empty` when there are none.
std::string table(const json& rows, const std::vector<Column>& columns, std::string_view empty);
// <a href="/job?id=...">id</a>
std::string job_link(const std::string& job_id);
// A button that runs an action (dashboard.js posts it with the token); data
// is a JSON object of the action's arguments.
std::string action_button(std::string_view action, const json& data, std::string_view label);
// An error box for a failed query (message and SQLSTATE, escaped).
std::string error_box(std::string_view message);

struct Layout {
  int refresh_ms = 1000;      // how often live panels are fetched again
  bool actions = false;       // --allow-actions: show the token field
};
// The whole page: header, navigation, body (HTML), the token field when
// actions are allowed, and the script that refreshes [data-live] panels.
std::string page(const Layout& layout, std::string_view title, std::string_view body);
// A panel whose content is fetched again from `src` every refresh.
std::string live_panel(std::string_view id, std::string_view src, std::string_view content);

}  // namespace workflow::serve
