// `workflow serve` (see server.hpp): routes, security headers, the response
// cache, the live panels' event streams and the signal-driven shutdown.
#include "server.hpp"

#include <fmt/core.h>
#include <httplib.h>
#include <sys/socket.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <charconv>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <set>
#include <thread>

#include "actions.hpp"
#include "assets.hpp"
#include "cache.hpp"
#include "db.hpp"
#include "events.hpp"
#include "host_check.hpp"
#include "html.hpp"
#include "metrics.hpp"
#include "overview.hpp"
#include "panels.hpp"

namespace workflow::serve {
namespace {

std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop = true; }

const char* kCsp =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

// The cache key of a request: its path and its (sorted) query parameters.
std::string key_of(const httplib::Request& req) {
  std::string k = req.path;
  for (const auto& [name, value] : req.params) k += "&" + url_encode(name) + "=" + url_encode(value);
  return k;
}

// A failed render: the error, escaped, as the page or panel.
Rendered failure(const std::exception& e) {
  if (const auto* s = dynamic_cast<const client::sql_error*>(&e)) {
    const auto& st = s->sqlstate();
    const int code = st == "42501" ? 403 : (st.rfind("22", 0) == 0 || st.rfind("42", 0) == 0) ? 400 : 500;
    return {code, error_box(fmt::format("{} (SQLSTATE {})", s->what(), st))};
  }
  spdlog::warn("render: {}", e.what());
  return {500, error_box(std::string("error: ") + e.what())};
}

Rendered guarded(const std::function<Rendered()>& render) {
  try {
    return render();
  } catch (const std::exception& e) {
    return failure(e);
  }
}

void send(httplib::Response& res, const Rendered& r) {
  res.status = r.status;
  res.set_content(r.body, r.content_type.c_str());
}

struct App {
  ServeOptions opts;
  Db db;
  Cache cache;
  Layout layout;
  ActionPolicy policy;
  Overview overview;

  Throughput throughput;
  Events events;
  // The live panels by path (/panel/job, ...): GET /events streams them.
  std::map<std::string, std::function<std::string(const httplib::Request&)>> panels;
  // Every path served to GET (and HEAD): another method there is 405.
  std::set<std::string> get_paths;

  void get(httplib::Server& svr, const std::string& path, httplib::Server::Handler handler) {
    get_paths.insert(path);
    svr.Get(path, std::move(handler));
  }

  PanelContext ctx() { return PanelContext{db, policy.allowed, &throughput}; }

  // GET path (a page) and GET /panel/path (its live part), both cached for
  // --cache-ms (the counts across every job, in Overview, for longer).
  void page_and_panel(httplib::Server& svr, const std::string& path,
                      std::function<std::string(const httplib::Request&)> title,
                      std::function<std::string(const httplib::Request&)> form,
                      std::function<std::string(const httplib::Request&)> panel) {
    const std::chrono::milliseconds ttl(opts.cache_ms);
    panels["/panel" + path] = panel;
    get(svr, "/panel" + path, [this, panel, ttl](const httplib::Request& req, httplib::Response& res) {
      send(res, cache.get(key_of(req), [&] { return guarded([&] { return Rendered{200, panel(req)}; }); }, ttl));
    });
    get(svr, path == "/jobs" ? "/" : path, [this, path, title, form, panel, ttl](const httplib::Request& req,
                                                                              httplib::Response& res) {
      const Rendered inner = cache.get("/panel" + path + key_of(req).substr(req.path.size()), [&] {
        return guarded([&] { return Rendered{200, panel(req)}; });
      }, ttl);
      std::string query = key_of(req).substr(req.path.size());
      if (!query.empty()) query[0] = '?';
      const bool missing = inner.status == 200 && inner.body.empty() && path == "/job";
      const std::string body =
          missing ? "<p>" + escape("job " + req.get_param_value("id") + " not found") + "</p>"
                  : form(req) + live_panel("panel", "/panel" + path + query, inner.body);
      send(res, {missing ? 404 : inner.status, page(layout, title(req), body)});
    });
  }
};

std::string option_list(const std::string& selected) {
  std::string out = "<option value=\"\">any status</option>";
  for (const char* s : {"pending", "running", "completed", "failed", "cancelled"})
    out += fmt::format("<option{}>{}</option>", selected == s ? " selected" : "", s);
  return out;
}

// POST /action/NAME (NAME: [a-z-]+), the one path served to POST.
bool is_action_path(const std::string& path) {
  const std::string prefix = "/action/";
  if (path.size() <= prefix.size() || path.compare(0, prefix.size(), prefix) != 0) return false;
  for (std::size_t i = prefix.size(); i < path.size(); ++i)
    if (!((path[i] >= 'a' && path[i] <= 'z') || path[i] == '-')) return false;
  return true;
}

void routes(httplib::Server& svr, App& app, const HostPolicy& hosts) {
  // A request addressed to a name this server does not answer to (DNS
  // rebinding, serve/host_check.hpp): 403, nothing read or written. Then a
  // known path asked with a method it does not serve: 405 and the methods
  // it does (Allow), before the body is read; an unknown path is 404 whatever
  // the method (cpp-httplib itself answers a body-less POST with 400).
  svr.set_pre_routing_handler([&app, &hosts](const httplib::Request& req, httplib::Response& res) {
    if (!host_allowed(hosts, req.get_header_value("Host"))) {
      res.status = 403;
      res.set_content("host not allowed: start serve with --allow-host NAME to answer to NAME\n", "text/plain");
      return httplib::Server::HandlerResponse::Handled;
    }
    const bool read = req.method == "GET" || req.method == "HEAD";
    const char* allow = app.get_paths.count(req.path) ? "GET, HEAD" : is_action_path(req.path) ? "POST" : nullptr;
    if (allow && (allow[0] == 'G' ? read : req.method == "POST"))
      return httplib::Server::HandlerResponse::Unhandled;
    res.status = allow ? 405 : 404;
    if (allow) res.set_header("Allow", allow);
    res.set_content(allow ? "method not allowed\n" : "not found\n", "text/plain");
    return httplib::Server::HandlerResponse::Handled;
  });
  svr.set_post_routing_handler([](const httplib::Request&, httplib::Response& res) {
    res.set_header("Content-Security-Policy", kCsp);
    res.set_header("X-Content-Type-Options", "nosniff");
    res.set_header("Referrer-Policy", "no-referrer");
    res.set_header("Cache-Control", "no-store");
  });
  app.get(svr, "/static/dashboard.css", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(assets::kCss, "text/css; charset=utf-8");
  });
  app.get(svr, "/static/dashboard.js", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(assets::kJs, "text/javascript; charset=utf-8");
  });
  auto none = [](const httplib::Request&) { return std::string(); };
  app.page_and_panel(
      svr, "/jobs", [](const httplib::Request&) { return std::string("Jobs"); },
      [](const httplib::Request& req) {
        return fmt::format(
            "<form class=\"filters\" method=\"get\" action=\"/\"><select name=\"status\">{}</select>"
            "<input name=\"q\" placeholder=\"search id or type\" value=\"{}\"><button>filter</button></form>",
            option_list(req.get_param_value("status")), escape(req.get_param_value("q")));
      },
      [&app](const httplib::Request& req) {
        auto c = app.ctx();
        return jobs_panel(c, req.get_param_value("status"), req.get_param_value("q"));
      });
  app.page_and_panel(
      svr, "/job", [](const httplib::Request& req) { return "Job " + req.get_param_value("id"); }, none,
      [&app](const httplib::Request& req) {
        auto c = app.ctx();
        return job_panel(c, req.get_param_value("id"));
      });
  app.page_and_panel(
      svr, "/failures", [](const httplib::Request&) { return std::string("Failed and dead tasks"); }, none,
      [&app](const httplib::Request&) {
        auto c = app.ctx();
        return failures_panel(c);
      });
  app.page_and_panel(
      svr, "/queues", [](const httplib::Request&) { return std::string("Queues"); }, none,
      [&app](const httplib::Request&) {
        auto c = app.ctx();
        return queues_panel(c, app.overview.open(app.db));
      });
  // Pages that answer a form: neither live nor cached.
  auto form_page = [&svr, &app](const std::string& path, const std::string& title,
                                std::function<std::string(const httplib::Request&)> form,
                                std::function<std::string(PanelContext&, const httplib::Request&)> panel) {
    app.get(svr, path, [&app, title, form, panel](const httplib::Request& req, httplib::Response& res) {
      const Rendered inner = guarded([&] {
        auto c = app.ctx();
        return Rendered{200, panel(c, req)};
      });
      send(res, {inner.status, page(app.layout, title, form(req) + inner.body)});
    });
  };
  form_page(
      "/history", "Audit history of a row",
      [](const httplib::Request& req) {
        const auto t = req.get_param_value("table");
        return fmt::format(
            "<form class=\"filters\" method=\"get\" action=\"/history\"><input name=\"table\" "
            "placeholder=\"table, e.g. public.orders\" value=\"{}\"><input name=\"key\" size=\"40\" "
            "placeholder='key, e.g. {{\"id\": 1}}' value=\"{}\"><button>show history</button></form>",
            escape(t.empty() ? "workflow.tasks" : t), escape(req.get_param_value("key")));
      },
      [](PanelContext& c, const httplib::Request& req) {
        return history_panel(c, req.get_param_value("table"), req.get_param_value("key"));
      });
  form_page(
      "/survey", "Weekly survey report",
      [](const httplib::Request& req) {
        return fmt::format(
            "<form class=\"filters\" method=\"get\" action=\"/survey\"><input name=\"session\" "
            "placeholder=\"session id\" value=\"{}\"><input name=\"week\" type=\"date\" value=\"{}\">"
            "<button>show week</button></form>",
            escape(req.get_param_value("session")), escape(req.get_param_value("week")));
      },
      [](PanelContext& c, const httplib::Request& req) {
        return survey_panel(c, req.get_param_value("session"), req.get_param_value("week"));
      });
  // A live panel as Server-Sent Events: GET /events?panel=/panel/job%3Fid%3DJ
  // (the panel's data-live URL, encoded). An event `panel` whose data is the
  // panel's HTML, whenever a refresh renders it changed (and once at first),
  // and a comment when nothing was written for a heartbeat. 404 for an
  // unknown panel; 503 when --max-streams are open (the page polls instead).
  app.get(svr, "/events", [&app](const httplib::Request& req, httplib::Response& res) {
    const std::string panel = req.get_param_value("panel");
    const auto q = panel.find('?');
    httplib::Request preq;
    preq.path = panel.substr(0, q);
    if (q != std::string::npos) httplib::detail::parse_query_text(panel.substr(q + 1), preq.params);
    const auto it = app.panels.find(preq.path);
    if (it == app.panels.end()) {
      res.status = 404;
      res.set_content("no such live panel\n", "text/plain");
      return;
    }
    auto stream = app.events.subscribe(key_of(preq), [fn = it->second, preq] {
      return guarded([&] { return Rendered{200, fn(preq)}; });
    });
    if (!stream) {
      res.status = 503;
      res.set_content("too many live streams: poll the panel instead\n", "text/plain");
      return;
    }
    res.set_header("X-Accel-Buffering", "no");  // a proxy in front must not buffer the stream
    res.set_chunked_content_provider("text/event-stream", [stream](size_t, httplib::DataSink& sink) {
      bool ended = false;
      const bool ok =
          stream->write_next([&sink](const std::string& s) { return sink.write(s.data(), s.size()); }, ended);
      if (ended) sink.done();
      return ok;
    });
  });
  app.get(svr, "/metrics", [&app](const httplib::Request& req, httplib::Response& res) {
    Rendered r = app.cache.get(key_of(req), [&] {
      return Rendered{200, render_metrics(app.db, app.overview), "text/plain; version=0.0.4; charset=utf-8"};
    });
    r.body += events_metrics(app.events.stats());
    send(res, r);
  });
  app.get(svr, "/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain");
  });
  app.get(svr, "/readyz", [&app](const httplib::Request&, httplib::Response& res) {
    try {
      const auto v = app.db.value(
          "SELECT to_json((SELECT extversion FROM pg_extension WHERE extname = 'workflow'))");
      if (v.is_null()) {
        res.status = 503;
        res.set_content("not ready: the workflow extension is not installed\n", "text/plain");
      } else if (!app.db.readable("workflow.job_summary")) {
        res.status = 503;
        res.set_content("not ready: this role cannot read the monitoring views (grant workflow_monitor)\n",
                        "text/plain");
      } else {
        res.set_content("ready: workflow " + v.get<std::string>() + "\n", "text/plain");
      }
    } catch (const std::exception& e) {
      res.status = 503;
      res.set_content(std::string("not ready: ") + e.what() + "\n", "text/plain");
    }
  });
  svr.Post(R"(/action/([a-z-]+))", [&app](const httplib::Request& req, httplib::Response& res) {
    send(res, run_action(app.db, app.policy,
                         {req.matches[1], req.get_header_value("Authorization"), req.body,
                          req.remote_addr + ":" + std::to_string(req.remote_port)}));
  });
}

}  // namespace

int serve(const ServeOptions& opts, client::ClientOptions client_options) {
  if (opts.allow_actions && opts.token.empty())
    throw std::invalid_argument("--allow-actions needs a token (--token-file or WORKFLOW_SERVE_TOKEN)");
  const auto colon = opts.listen.rfind(':');
  if (colon == std::string::npos) throw std::invalid_argument("--listen must be HOST:PORT, not " + opts.listen);
  std::string host = opts.listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const std::string port_text = opts.listen.substr(colon + 1);
  int port = -1;  // 0..65535, 0: any free port
  const auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() || port < 0 ||
      port > 65535)
    throw std::invalid_argument(
        fmt::format("--listen: port '{}' of '{}' is not a number 0..65535 (0: any free port)", port_text, opts.listen));

  client_options.pool.max_size = 4;
  // A dashboard's reads should not take parallel workers (CPU) from the
  // workers' own statements: serial plans, unless PGOPTIONS says otherwise.
  setenv("PGOPTIONS", "-c max_parallel_workers_per_gather=0", 0);
  App app{opts, Db(std::move(client_options)), Cache(std::chrono::milliseconds(opts.cache_ms)),
          Layout{opts.refresh_ms, opts.allow_actions}, ActionPolicy{opts.allow_actions, opts.token},
          Overview(std::chrono::milliseconds(opts.scan_cache_ms), std::chrono::milliseconds(opts.count_cache_ms)),
          {},
          Events(app.cache, {std::chrono::milliseconds(opts.refresh_ms), std::chrono::milliseconds(opts.cache_ms),
                             std::chrono::milliseconds(opts.heartbeat_ms), opts.max_streams}),
          {},
          {}};
  httplib::Server svr;
  // Each open event stream holds a thread: --threads for requests, plus one
  // for each stream that --max-streams allows.
  const int threads = opts.threads + opts.max_streams;
  svr.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  // One request per connection: a keep-alive connection would hold a request
  // thread while a polling browser waits for its next refresh.
  svr.set_keep_alive_max_count(1);
  svr.set_read_timeout(5, 0);
  svr.set_write_timeout(5, 0);
  svr.set_payload_max_length(64 * 1024);
  const HostPolicy hosts = host_policy(host, opts.allow_hosts);
  routes(svr, app, hosts);
  // cpp-httplib (Debian's build) listens with a backlog of 5: a burst of
  // polls (a new connection each) overflowed it and waited for the
  // client's SYN retry, 1 s. The listening socket is kept here and listened
  // on again with the system's maximum once bound (Linux takes the new one).
  int listen_fd = -1;
  svr.set_socket_options([&listen_fd](socket_t sock) {
    httplib::default_socket_options(sock);
    listen_fd = static_cast<int>(sock);
  });

  const int bound = port == 0 ? svr.bind_to_any_port(host) : (svr.bind_to_port(host, port) ? port : -1);
  if (bound <= 0) throw std::runtime_error("cannot listen on " + opts.listen);
  if (listen_fd >= 0) ::listen(listen_fd, SOMAXCONN);
  if (!opts.port_file.empty()) std::ofstream(opts.port_file) << bound << "\n";
  const bool v6 = host.find(':') != std::string::npos;
  fmt::print("workflow serve: dashboard on http://{}{}{}:{}/ (metrics /metrics){}\n", v6 ? "[" : "", host,
             v6 ? "]" : "", bound, opts.allow_actions ? ", actions allowed with the token" : "");
  std::fflush(stdout);

  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::thread stopper([&svr, &app] {
    while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    app.events.stop();  // the streams end (their threads return to the pool)
    svr.stop();
  });
  const bool ok = svr.listen_after_bind();
  g_stop = true;
  stopper.join();
  return ok || g_stop ? 0 : 1;
}

}  // namespace workflow::serve
