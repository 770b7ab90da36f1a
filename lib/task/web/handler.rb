# frozen_string_literal: true

module Task
  class Web
    # A request the app cannot serve as asked: answered with its own page and status.
    class Refused < StandardError
      attr_reader :status

      def initialize(status, message)
        super(message)
        @status = status
      end
    end

    # One request.
    class Handler
      include ERB::Util
      include Html

      ALLOW = "GET, HEAD, POST"
      # The longest age the stale view takes (100 years), in seconds.
      MAX_AGE = 100 * 365 * 86_400

      def initialize(request, read_only:, adapter:, guard:)
        @req = request
        @read_only = read_only
        @guard = guard
        @adapter = adapter || ::Task::Task.interface.adapter
        # Claim states through the public API over that adapter.
        @iface = DataInterface::Interface.new(adapter: @adapter)
        @reader = Reader.new(@adapter, ROW_BUDGET)
      end

      def respond
        parts = @req.path_info.split("/").reject(&:empty?).map { |p| unesc(p) }
        if @req.post?
          post(parts)
        elsif @req.get? || @req.head?
          get(parts)
        else
          message(405, "Method not allowed", "#{@req.request_method} is not served here; #{ALLOW} are.", "allow" => ALLOW)
        end
      rescue Refused => e
        message(e.status, { 403 => "Refused", 404 => "Not found" }.fetch(e.status, "Bad request"), e.message)
      rescue ArgumentError, EncodingError => e
        # A list, id or cursor the store refuses (too long, ...).
        message(400, "Bad request", e.message)
      rescue ::Task::Error => e
        message(500, "Error", "#{e.class}: #{e.message}")
      rescue StandardError => e
        @req.get_header("rack.errors")&.puts("Task::Web: #{e.class}: #{e.message}")
        message(500, "Error", "The page could not be made (#{e.class}); the server's log has the details.")
      end

      private

      def get(parts)
        param("notice")
        param("sig")
        case parts
        in [] then index
        in ["lists", list] then list_page(list)
        in ["lists", list, "stale"] then stale_page(list)
        in ["lists", list, "claimed"] then claimed_page(list)
        in ["lists", list, "dead"] then dead_page(list)
        in ["lists", list, "tasks", id] then task_page(list, id)
        else raise Refused.new(404, "There is no such page.")
        end
      end

      def post(parts)
        raise Refused.new(403, "Read-only: nothing can be changed here.") if @read_only

        refusal = @guard.refusal(@req, form_param("csrf"))
        return message(403, "Refused", refusal) if refusal

        case parts
        in ["lists", list, "tasks", id, action] if ACTIONS.include?(action)
          notice = act(list, id, action)
          target = action == "complete" ? "/lists/#{esc(list)}" : "/lists/#{esc(list)}/tasks/#{esc(id)}"
          query = "notice=#{Rack::Utils.escape(notice)}&sig=#{@guard.notice_tag(notice)}"
          [303, { "location" => "#{@req.script_name}#{target}?#{query}" }, []]
        else raise Refused.new(404, "There is no such action.")
        end
      end

      def act(list, id, action)
        # As the command: completing or retrying a task that is not stored is "not found",
        # not a success.
        if action != "release" && !@reader.find(list, id)
          raise Refused.new(404, "Not found: no task #{Display.visible(id)} in #{Display.visible(list)}.")
        end

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

      # Each list with its count and oldest task's age, as far as the budget goes: every list
      # gets a share of it (at least one page, while the budget lasts).
      def index
        names = @reader.lists(LISTS)
        more = names.size > LISTS
        names = names.first(LISTS).sort
        partial = 0
        rows = names.each_with_index.map do |list, i|
          count, age = if @reader.room?
                         summary(list, @reader.whole_pages(@reader.left / (names.size - i)))
                       else
                         ["?", "?"]
                       end
          partial += 1 unless count.is_a?(Integer)
          [link("/lists/#{esc(list)}", list), count.is_a?(Integer) ? delimit(count) : count, h(age)]
        end
        notes = []
        notes << "Showing the first #{LISTS} lists read." if more
        if partial.positive?
          notes << "One page view reads at most #{delimit(ROW_BUDGET)} rows: \"at least\" marks a list read in part, " \
                   "\"?\" one not read. A list's own page counts it (Count)."
        end
        body = table(%w[List Tasks Oldest], rows, "No tasks stored.") + notes.map { |n| "<p>#{h(n)}</p>" }.join
        page(200, "Task lists", body)
      end

      # [count, age of the oldest] of a list read up to +rows+ rows.
      def summary(list, rows)
        oldest = nil
        n, ended = @reader.scan(list, rows: rows) do |entry|
          at = entry.task&.saved_at
          oldest = at if at && (oldest.nil? || at < oldest)
        end
        age = oldest ? duration(Time.now - oldest) : "-"
        ended ? [n, age] : ["at least #{delimit(n)}", oldest ? "at least #{age}" : "-"]
      end

      def list_page(list)
        after = param("after")
        counting = param("count") == "1" && after.nil?
        entries = []
        n, ended = @reader.scan(list, after: after, rows: counting ? @reader.whole_pages(@reader.left) : PAGE + 1) do |entry|
          entries << entry if entries.size <= PAGE
          :stop if !counting && entries.size > PAGE
        end
        more = entries.size > PAGE
        entries = entries.first(PAGE)
        base = "/lists/#{esc(list)}"
        count = if counting
                  "<p>#{ended ? delimit(n) : "at least #{delimit(n)}"} tasks#{ended ? "" : " (counted up to one page view's budget)"}.</p>"
                else
                  "<p>#{link("#{base}?count=1", "Count")} the tasks (reads up to #{delimit(ROW_BUDGET)}).</p>"
                end
        next_link = more ? "<p><a rel=\"next\" href=\"#{url("#{base}?after=#{Rack::Utils.escape(entries.last.id)}")}\">Next #{PAGE} &rarr;</a></p>" : ""
        first_link = after ? "<p>#{link(base, "\u2190 First page")}</p>" : ""
        body = list_nav(list) + count +
               (entries.empty? ? "<p>No tasks#{after ? " after #{show(after)}" : ""}.</p>" : task_table(list, entries)) +
               first_link + next_link
        page(200, "List #{list}", body)
      end

      def list_nav(list)
        base = "/lists/#{esc(list)}"
        "<nav>#{link(base, "All")}#{link("#{base}/stale", "Stale")}#{link("#{base}/claimed", "Claimed")}#{link("#{base}/dead", "Dead")}</nav>"
      end

      # The tasks saved more than older_than seconds ago (and rows whose age is unknown here),
      # from after +after+, within the budget; then a link to go on.
      def stale_page(list)
        text = param("older_than")
        # Digits with an optional fraction (no sign, no exponent: Float would warn of 1e400).
        seconds = text.nil? ? 3600 : (text.match?(/\A\d{1,12}(\.\d{1,6})?\z/) && Float(text))
        unless seconds && seconds <= MAX_AGE
          raise Refused.new(400, "older_than must be a number of seconds from 0 to #{MAX_AGE}, got #{Display.visible(text)}")
        end

        after = param("after")
        cutoff = Time.now - seconds
        found = []
        last = nil
        n, ended = @reader.scan(list, after: after) do |entry|
          last = entry.id
          next if entry.task && !(entry.task.saved_at && entry.task.saved_at <= cutoff)

          found << entry
          :stop if found.size > PAGE
        end
        more = found.size > PAGE
        found = found.first(PAGE)
        base = "/lists/#{esc(list)}/stale?older_than=#{Rack::Utils.escape(text || "3600")}"
        status = "Read #{delimit(n)} tasks#{after ? " after #{show(after)}" : ""}" \
                 "#{ended ? ", to the end of the list" : ", up to #{show(last)}"}."
        going_on = if more
                     "<p><a rel=\"next\" href=\"#{url("#{base}&after=#{Rack::Utils.escape(found.last.id)}")}\">Next #{PAGE} &rarr;</a></p>"
                   elsif !ended && last
                     "<p>#{status} <a href=\"#{url("#{base}&after=#{Rack::Utils.escape(last)}")}\">Continue &rarr;</a></p>"
                   else
                     "<p>#{status}</p>"
                   end
        body = list_nav(list) + "<p>Saved more than #{h(duration(seconds))} ago (#{PAGE} a page; rows whose age " \
                                "is unknown here are shown too).</p>" +
               (found.empty? ? "<p>None.</p>" : task_table(list, found)) + going_on
        page(200, "Stale in #{list}", body)
      end

      def claimed_page(list)
        claims = claims_of(list).select { |c| c[:owner] }.first(PAGE)
        rows = claims.map do |c|
          [task_link(list, c[:id]), show(c[:owner]), h(c[:expires_in] && duration(c[:expires_in])), h(c[:attempts])]
        end
        body = list_nav(list) + table(["Id", "Claimed by", "Lapses in", "Attempts"], rows, "No claimed tasks.")
        page(200, "Claimed in #{list}", body)
      end

      # The first PAGE dead tasks; one find each tells a claim row whose task is gone.
      def dead_page(list)
        limit = @adapter.max_attempts
        dead = limit ? claims_of(list).select { |c| c[:attempts] >= limit }.first(PAGE) : []
        rows = dead.map do |c|
          id = @reader.find(list, c[:id]) ? task_link(list, c[:id]) : "#{show(c[:id])} (task gone)"
          [id, h(c[:attempts]), show(c[:last_error])]
        end
        body = list_nav(list) + table(["Id", "Attempts", "Last error"], rows, "No dead tasks.")
        page(200, "Dead in #{list}", body)
      end

      def task_page(list, id)
        entry = @reader.find(list, id)
        raise Refused.new(404, "No task #{Display.visible(id)} in #{Display.visible(list)}.") unless entry

        claim = claim_of(list, id)
        task = entry.task
        facts = { "List" => list, "Id" => id, "Type" => task ? task.class.name : entry.row[:type],
                  "Saved" => task&.saved_at&.utc&.iso8601(6) }
        facts["Cannot be read here"] = entry.reason if entry.bad?
        facts.merge!("Attempts" => claim ? claim[:attempts] : 0, "Last error" => claim && claim[:last_error],
                     "Claimed by" => claim && claim[:owner],
                     "Claim lapses in" => claim && claim[:expires_in] && duration(claim[:expires_in]))
        dl = facts.map { |k, v| "<dt>#{h(k)}</dt><dd>#{v.nil? ? "-" : show(v)}</dd>" }.join
        data = if task
                 JSON.pretty_generate(task.as_json["data"]).split("\n").map { |l| Display.visible(l) }.join("\n")
               else
                 entry.row[:data].nil? ? "(null)" : Display.visible(entry.row[:data])
               end
        heading = task ? "Data" : "Data as stored"
        body = list_nav(list) + "<dl>#{dl}</dl><h2>#{heading}</h2><pre>#{h(data)}</pre>" + actions(list, id)
        page(200, "Task #{id}", body)
      end

      def actions(list, id)
        return "<p>Read-only.</p>" if @read_only

        forms = ACTIONS.map do |action|
          "<form method=\"post\" action=\"#{url("/lists/#{esc(list)}/tasks/#{esc(id)}/#{action}")}\">" \
            "<input type=\"hidden\" name=\"csrf\" value=\"#{h(token)}\"><button type=\"submit\">#{action.capitalize}</button></form>"
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

      # The token of this browser's forms: its signed cookie, or a new one.
      def token
        @token ||= @guard.cookie_tokens(@req).first || @guard.new_token
      end

      def page(status, title, body, extra = {})
        html = <<~HTML
          <!DOCTYPE html>
          <html lang="en"><head><meta charset="utf-8">
          <meta name="viewport" content="width=device-width, initial-scale=1">
          <title>#{show(title)} · tasks</title><link rel="stylesheet" href="#{url("/task.css")}"></head>
          <body><header><a href="#{url("/")}">Tasks</a></header><main>
          <h1>#{show(title)}</h1>
          #{notice}
          #{body}
          </main></body></html>
        HTML
        headers = {
          "content-type" => "text/html; charset=utf-8", "content-security-policy" => CSP,
          "x-content-type-options" => "nosniff", "referrer-policy" => "same-origin", "cache-control" => "no-store",
          "x-frame-options" => "DENY"
        }.merge(extra)
        unless @req.post? || @guard.cookie_tokens(@req).include?(token)
          Rack::Utils.set_cookie_header!(headers, CSRF_COOKIE,
                                         value: token, path: @req.script_name.empty? ? "/" : @req.script_name,
                                         httponly: true, same_site: :strict, secure: @req.ssl?)
        end
        [status, headers, [html]]
      end

      # A page that only says something (errors, refusals).
      def message(status, title, text, extra = {})
        page(status, title, "<p class=\"error\">#{show(text)}</p>", extra)
      end

      # The notice the app itself put in its redirect after an action, if the link carries one.
      def notice
        text = @req.GET["notice"]
        tag = @req.GET["sig"]
        return "" unless text.is_a?(String) && tag.is_a?(String) && @guard.notice?(text, tag)

        "<p class=\"notice\">#{show(text)}</p>"
      rescue StandardError
        "" # the request's parameters cannot be read: it gets a 400 page, without a notice
      end

      # A query parameter given once as UTF-8 text, or nil; anything else is a bad request.
      def param(name)
        value = safe_param { @req.GET[name] }
        check_param(name, value)
      end

      def form_param(name)
        value = safe_param { @req.POST[name] }
        value.is_a?(String) ? check_param(name, value) : nil
      end

      def check_param(name, value)
        return nil if value.nil? || value == ""
        raise Refused.new(400, "#{name} must be given once, as text") unless value.is_a?(String)
        raise Refused.new(400, "#{name} is not UTF-8 text") unless value.dup.force_encoding(Encoding::UTF_8).valid_encoding?

        value.dup.force_encoding(Encoding::UTF_8)
      end

      def safe_param
        yield
      rescue ArgumentError, TypeError, RangeError, EOFError => e
        # Rack's parsers: bad %-escapes, a key used both as a name and a hash, nesting too deep.
        raise Refused.new(400, "The request's parameters cannot be read (#{e.class})")
      end
    end
  end
end
