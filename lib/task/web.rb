# frozen_string_literal: true

require "erb"
require "json"
require "rack"
require "securerandom"
require "time"
require "task"

module Task
  # A Rack app for operators: the lists with their counts and oldest task, one list a page at
  # a time, one task in full, the stale, claimed and dead tasks, and the repairs (retry,
  # release, complete) as POSTs with a CSRF token. It has no login of its own: mount it behind
  # the application's authentication, as Sidekiq::Web is.
  #
  #   # config.ru
  #   run Task::Web.new
  #   # Rails routes, behind authentication
  #   mount Task::Web.new(read_only: true), at: "/tasks"
  #
  # Every value from the store is escaped; no action is taken by GET; pages are served with a
  # Content-Security-Policy that allows no script at all (the pages need none) and only the
  # app's own stylesheet.
  class Web
    PAGE = 50
    # The index shows at most this many lists.
    LISTS = 500
    # The index reads at most this many tasks of a list for its oldest task's age (shown as
    # "at least" beyond); the count is exact.
    AGE_SCAN = 20_000
    CSRF_COOKIE = "task_web_csrf"
    ACTIONS = %w[retry release complete].freeze
    CSP = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; " \
          "frame-ancestors 'none'; base-uri 'none'"
    CSS = <<~CSS
      body { font: 15px/1.4 system-ui, sans-serif; margin: 0; color: #1d1d1f; background: #fafafa; }
      header { background: #243b53; color: #fff; padding: .6em 1em; }
      header a { color: #fff; text-decoration: none; font-weight: 600; }
      main { padding: 1em; max-width: 70em; }
      table { border-collapse: collapse; width: 100%; background: #fff; }
      th, td { text-align: left; padding: .35em .5em; border-bottom: 1px solid #ddd; vertical-align: top;
               overflow-wrap: anywhere; }
      pre { background: #fff; border: 1px solid #ddd; padding: .6em; white-space: pre-wrap; overflow-wrap: anywhere; }
      nav a, .actions form { margin-right: .8em; display: inline-block; }
      .notice { background: #e3f9e5; padding: .5em; } .error { background: #ffe3e3; padding: .5em; }
      button { font: inherit; padding: .3em .8em; }
      dl { display: grid; grid-template-columns: max-content 1fr; gap: .2em 1em; }
      @media (max-width: 600px) { .wide { display: none; } main { padding: .5em; } }
    CSS

    # +read_only+: show, never change. +adapter+: the store to show (default: the one
    # Task::Task.interface uses at each request).
    def initialize(read_only: false, adapter: nil)
      @read_only = read_only
      @adapter = adapter
    end

    def call(env)
      request = Rack::Request.new(env)
      return [200, { "content-type" => "text/css", "cache-control" => "max-age=3600" }, [CSS]] if request.path_info == "/task.css"

      Handler.new(self, request, @read_only, @adapter).respond
    end

    # One request.
    class Handler
      include ERB::Util

      def initialize(app, request, read_only, adapter)
        @app = app
        @req = request
        @read_only = read_only
        @adapter = adapter || ::Task::Task.interface.adapter
        # Lists, ages, staleness and dead tasks, through the public API over that adapter.
        @iface = DataInterface::Interface.new(adapter: @adapter)
        @token = csrf_cookie || SecureRandom.urlsafe_base64(24)
      end

      def respond
        parts = @req.path_info.split("/").reject(&:empty?).map { |p| unesc(p) }
        if @req.post?
          post(parts)
        elsif @req.get? || @req.head?
          get(parts)
        else
          text(405, "method not allowed")
        end
      rescue ::Task::Error => e
        page(500, "Error", "<p class=\"error\">#{h(e.class)}: #{h(e.message)}</p>")
      end

      private

      def get(parts)
        case parts
        in [] then index
        in ["lists", list] then list_page(list)
        in ["lists", list, "stale"] then stale_page(list)
        in ["lists", list, "claimed"] then claimed_page(list)
        in ["lists", list, "dead"] then dead_page(list)
        in ["lists", list, "tasks", id] then task_page(list, id)
        else text(404, "not found")
        end
      end

      def post(parts)
        return text(403, "read-only") if @read_only
        unless valid_csrf?
          return text(403, "refused: the form's CSRF token is missing or does not match (reload the page and try again)")
        end

        case parts
        in ["lists", list, "tasks", id, action] if ACTIONS.include?(action)
          notice = act(list, id, action)
          target = action == "complete" ? "/lists/#{esc(list)}" : "/lists/#{esc(list)}/tasks/#{esc(id)}"
          [303, { "location" => "#{@req.script_name}#{target}?notice=#{Rack::Utils.escape(notice)}" }, []]
        else text(404, "not found")
        end
      end

      def act(list, id, action)
        case action
        when "retry"
          @adapter.retry_task(list, id)
          "Retried: attempts and last error cleared."
        when "complete"
          @adapter.delete(list, id)
          "Completed #{id}."
        when "release"
          claim = claim_of(list, id)
          return "Nobody holds a claim on it." unless claim&.fetch(:owner)

          @adapter.release(list, id, claim[:owner], nil) ? "Released #{claim[:owner]}'s claim." : "The claim changed hands; nothing released."
        end
      end

      def index
        rows = @iface.lists.first(LISTS).map do |list|
          count = @adapter.count(list)
          oldest = nil
          scanned = 0
          # Rows this process cannot make a task of (a class not loaded here) have no age.
          @adapter.all(list, on_bad_row: ->(_row, _error) {}).each do |task|
            oldest = task.saved_at if task.saved_at && (oldest.nil? || task.saved_at < oldest)
            break if (scanned += 1) >= AGE_SCAN
          end
          age = oldest ? "#{scanned >= AGE_SCAN ? "at least " : ""}#{duration(Time.now - oldest)}" : "-"
          ["<a href=\"#{url("/lists/#{esc(list)}")}\">#{h(list)}</a>", count, h(age)]
        end
        page(200, "Task lists", table(%w[List Tasks Oldest], rows, "No tasks stored."))
      end

      def list_page(list)
        after = @req.params["after"]
        after = nil if after.to_s.empty?
        tasks = @adapter.all(list, after: after).each.first(PAGE + 1)
        more = tasks.size > PAGE
        tasks = tasks.first(PAGE)
        rows = tasks.map { |t| task_row(list, t) }.join
        next_link = more ? "<p><a rel=\"next\" href=\"#{url("/lists/#{esc(list)}?after=#{Rack::Utils.escape(tasks.last.id)}")}\">Next #{PAGE} &rarr;</a></p>" : ""
        first_link = after ? "<p><a href=\"#{url("/lists/#{esc(list)}")}\">&larr; First page</a></p>" : ""
        body = list_nav(list) + (tasks.empty? ? "<p>No tasks#{after ? " after #{h(after)}" : ""}.</p>" : task_table(rows)) +
               first_link + next_link
        page(200, "List #{list}", body)
      end

      def task_table(rows)
        "<table><thead><tr><th>Id</th><th class=\"wide\">Type</th><th>Saved</th><th class=\"wide\">Data</th></tr></thead>" \
          "<tbody>#{rows}</tbody></table>"
      end

      def task_row(list, task)
        data = JSON.generate(task.as_json["data"])
        data = "#{data[0, 120]}…" if data.size > 120
        "<tr><td>#{task_link(list, task.id)}</td>" \
          "<td class=\"wide\">#{h(task.class.name)}</td><td>#{h(task.saved_at&.utc&.iso8601)}</td>" \
          "<td class=\"wide\"><code>#{h(data)}</code></td></tr>"
      end

      def list_nav(list)
        base = "/lists/#{esc(list)}"
        "<nav><a href=\"#{url(base)}\">All</a><a href=\"#{url("#{base}/stale")}\">Stale</a>" \
          "<a href=\"#{url("#{base}/claimed")}\">Claimed</a><a href=\"#{url("#{base}/dead")}\">Dead</a></nav>"
      end

      def stale_page(list)
        seconds = Float(@req.params["older_than"] || 3600, exception: false) || 3600
        tasks = @iface.older_than(list, seconds).first(PAGE)
        body = list_nav(list) + "<p>Saved more than #{h(duration(seconds))} ago (first #{PAGE}).</p>" +
               (tasks.empty? ? "<p>None.</p>" : task_table(tasks.map { |t| task_row(list, t) }.join))
        page(200, "Stale in #{list}", body)
      end

      def claimed_page(list)
        claims = claims_of(list).select { |c| c[:owner] }.first(PAGE)
        rows = claims.map do |c|
          [task_link(list, c[:id]), h(c[:owner]), h(c[:expires_in] && duration(c[:expires_in])), h(c[:attempts])]
        end
        body = list_nav(list) + table(["Id", "Claimed by", "Lapses in", "Attempts"], rows, "No claimed tasks.")
        page(200, "Claimed in #{list}", body)
      end

      def dead_page(list)
        rows = @iface.dead(list).first(PAGE).map { |t| [task_link(list, t.id), h(t.attempts), h(t.last_error)] }
        body = list_nav(list) + table(["Id", "Attempts", "Last error"], rows, "No dead tasks.")
        page(200, "Dead in #{list}", body)
      end

      # A table of cells already escaped, or +none+ when there are no rows.
      def table(headings, rows, none)
        return "<p>#{h(none)}</p>" if rows.empty?

        head = headings.map { |t| "<th>#{h(t)}</th>" }.join
        body = rows.map { |cells| "<tr>#{cells.map { |c| "<td>#{c}</td>" }.join}</tr>" }.join
        "<table><thead><tr>#{head}</tr></thead><tbody>#{body}</tbody></table>"
      end

      def task_link(list, id)
        "<a href=\"#{url("/lists/#{esc(list)}/tasks/#{esc(id)}")}\">#{h(id)}</a>"
      end

      def task_page(list, id)
        task = @adapter.find(list, id)
        return page(404, "Not found", list_nav(list) + "<p>No task #{h(id)} in #{h(list)}.</p>") unless task

        claim = claim_of(list, id)
        facts = {
          "List" => list, "Id" => id, "Type" => task.class.name, "Saved" => task.saved_at&.utc&.iso8601(6),
          "Attempts" => claim ? claim[:attempts] : 0, "Last error" => claim && claim[:last_error],
          "Claimed by" => claim && claim[:owner],
          "Claim lapses in" => claim && claim[:expires_in] && duration(claim[:expires_in])
        }
        dl = facts.map { |k, v| "<dt>#{h(k)}</dt><dd>#{v.nil? ? "-" : h(v)}</dd>" }.join
        body = list_nav(list) + "<dl>#{dl}</dl><h2>Data</h2><pre>#{h(JSON.pretty_generate(task.as_json["data"]))}</pre>" +
               actions(list, id)
        page(200, "Task #{id}", body)
      end

      def actions(list, id)
        return "<p>Read-only.</p>" if @read_only

        forms = ACTIONS.map do |action|
          "<form method=\"post\" action=\"#{url("/lists/#{esc(list)}/tasks/#{esc(id)}/#{action}")}\">" \
            "<input type=\"hidden\" name=\"csrf\" value=\"#{h(@token)}\"><button type=\"submit\">#{action.capitalize}</button></form>"
        end
        "<div class=\"actions\">#{forms.join}</div>"
      end

      def claims_of(list)
        @adapter.claims(list)
      rescue ::Task::Error::QueryRejected
        [] # no claims table: nothing is claimed
      end

      def claim_of(list, id)
        @iface.claim_info(list, id)
      rescue ::Task::Error::QueryRejected
        nil # no claims table: nothing is claimed
      end

      def page(status, title, body)
        notice = @req.params["notice"]
        html = <<~HTML
          <!DOCTYPE html>
          <html lang="en"><head><meta charset="utf-8">
          <meta name="viewport" content="width=device-width, initial-scale=1">
          <title>#{h(title)} · tasks</title><link rel="stylesheet" href="#{url("/task.css")}"></head>
          <body><header><a href="#{url("/")}">Tasks</a></header><main>
          <h1>#{h(title)}</h1>
          #{notice ? "<p class=\"notice\">#{h(notice)}</p>" : ""}
          #{body}
          </main></body></html>
        HTML
        headers = {
          "content-type" => "text/html; charset=utf-8", "content-security-policy" => CSP,
          "x-content-type-options" => "nosniff", "referrer-policy" => "same-origin", "cache-control" => "no-store"
        }
        unless csrf_cookie == @token
          Rack::Utils.set_cookie_header!(headers, CSRF_COOKIE,
                                         value: @token, path: @req.script_name.empty? ? "/" : @req.script_name,
                                         httponly: true, same_site: :strict)
        end
        [status, headers, [html]]
      end

      def text(status, message)
        [status, { "content-type" => "text/plain; charset=utf-8", "content-security-policy" => CSP }, [message]]
      end

      # Double-submit: the form's token must equal the cookie the app set, which another site
      # can neither read nor (SameSite=Strict) make the browser send.
      def valid_csrf?
        cookie = csrf_cookie
        form = @req.POST["csrf"].to_s
        !cookie.nil? && !form.empty? && Rack::Utils.secure_compare(cookie, form)
      end

      def csrf_cookie
        v = @req.cookies[CSRF_COOKIE]
        v.nil? || v.empty? ? nil : v
      end

      def url(path)
        h("#{@req.script_name}#{path}")
      end

      # A list or id as one path segment: everything but letters, digits and -._~= is
      # percent-encoded ("/" and "?" included), and "." and ".." (which a browser would
      # resolve as a path step, encoded or not) get a leading "=", as does anything that starts
      # with "=" already; `unesc` takes it off.
      def esc(segment)
        s = segment.to_s
        s = "=#{s}" if s.start_with?("=") || s == "." || s == ".."
        s.b.gsub(/[^A-Za-z0-9\-._~=]/n) { |c| format("%%%02X", c.ord) }
      end

      def unesc(segment)
        s = Rack::Utils.unescape_path(segment)
        s.start_with?("=") ? s[1..] : s
      end

      def duration(seconds)
        s = seconds.to_i
        return "#{s} s" if s < 120
        return "#{s / 60} min" if s < 7200
        return "#{s / 3600} h" if s < 172_800

        "#{s / 86_400} days"
      end
    end
  end
end
