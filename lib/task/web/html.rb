# frozen_string_literal: true

module Task
  class Web
    # The HTML of the pages: tables of tasks, links, and how values are written into them.
    # Every value from the store or the request goes through `show` (escaped, control and
    # bidi characters as visible escapes) or `url`.
    module Html
      include ERB::Util

      private

      def task_table(list, entries)
        "<table><thead><tr><th>Id</th><th class=\"wide\">Type</th><th>Saved</th><th class=\"wide\">Data</th></tr></thead>" \
          "<tbody>#{entries.map { |e| task_row(list, e) }.join}</tbody></table>"
      end

      def task_row(list, entry)
        return bad_row(list, entry) if entry.bad?

        task = entry.task
        data = JSON.generate(task.as_json["data"])
        data = "#{data[0, 120]}…" if data.size > 120
        "<tr><td>#{task_link(list, task.id)}</td>" \
          "<td class=\"wide\">#{show(task.class.name)}</td><td>#{h(task.saved_at&.utc&.iso8601)}</td>" \
          "<td class=\"wide\"><code>#{show(data)}</code></td></tr>"
      end

      # A row this process cannot make a task of: its id, type, data as stored, and why.
      def bad_row(list, entry)
        raw = entry.row[:data]
        raw = "#{raw[0, 120]}…" if raw && raw.size > 120
        "<tr><td>#{task_link(list, entry.id)}</td><td class=\"wide\">#{show(entry.row[:type])}</td><td>-</td>" \
          "<td><code>#{raw.nil? ? "(null)" : show(raw)}</code> <span class=\"error\">#{show(entry.reason)}</span></td></tr>"
      end

      # A table of cells already escaped, or +none+ when there are no rows.
      def table(headings, rows, none)
        return "<p>#{h(none)}</p>" if rows.empty?

        head = headings.map { |t| "<th>#{h(t)}</th>" }.join
        body = rows.map { |cells| "<tr>#{cells.map { |c| "<td>#{c}</td>" }.join}</tr>" }.join
        "<table><thead><tr>#{head}</tr></thead><tbody>#{body}</tbody></table>"
      end

      def task_link(list, id)
        link("/lists/#{esc(list)}/tasks/#{esc(id)}", id)
      end

      def link(path, text)
        "<a href=\"#{url(path)}\">#{show(text)}</a>"
      end

      def url(path)
        h("#{@req.script_name}#{path}")
      end

      # Text from the store or the request, for the page: escaped, with control and bidi
      # characters shown as escapes.
      def show(value)
        h(Display.visible(value))
      end

      def delimit(number)
        number.to_s.reverse.scan(/\d{1,3}/).join(",").reverse
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
        s = Rack::Utils.unescape_path(segment).force_encoding(Encoding::UTF_8)
        raise Refused.new(400, "The path is not UTF-8 text: #{Display.visible(s)}") unless s.valid_encoding?

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
