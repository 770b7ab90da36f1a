# frozen_string_literal: true

require "open3"
require "tmpdir"
require "rbconfig"
require "rack/mock"
require "task/web"

# Task::Web over the real node through Rack (no browser): what one page view reads, rows that
# cannot become tasks, forged CSRF tokens and notices, and requests no page can serve.
RSpec.describe Task::Web do
  let(:adapter) { cassandra_adapter(page_size: 500) }
  let(:list) { unique_list("webh") }
  let(:app) { described_class.new(adapter: adapter) }

  before { use_adapter(adapter) }

  # The app as a server runs it: an exception that escapes becomes the server's bare 500.
  def request(method, path, query: nil, env: {}, app: self.app)
    e = Rack::MockRequest.env_for("/", method: method, **env.slice(:input, :params))
    e["PATH_INFO"] = path
    e["QUERY_STRING"] = query.to_s
    env.each { |k, v| e[k] = v if k.is_a?(String) }
    status, headers, body = begin
      app.call(e)
    rescue StandardError => err
      [500, { "content-type" => "text/plain" }, ["raw server error: #{err.class}"]]
    end
    text = +""
    body.each { |part| text << part }
    body.close if body.respond_to?(:close)
    Rack::MockResponse.new(status, headers, [text])
  end

  def get(path, query: nil, cookie: nil, app: self.app)
    request("GET", path, query: query, env: cookie ? { "HTTP_COOKIE" => cookie } : {}, app: app)
  end

  def post(path, form, cookie: nil, headers: {}, app: self.app)
    env = { input: form.is_a?(String) ? form : Rack::Utils.build_query(form), "CONTENT_TYPE" => "application/x-www-form-urlencoded" }
    env["HTTP_COOKIE"] = cookie if cookie
    request("POST", path, env: env.merge(headers), app: app)
  end

  def path(*segments)
    "/#{segments.map { |s| s.to_s.b.gsub(/[^A-Za-z0-9\-._~]/n) { |c| format("%%%02X", c.ord) } }.join("/")}"
  end

  # The cookie and the form token a browser would hold after showing the task's page.
  def session_for(task_path, app: self.app)
    page = get(task_path, app: app)
    expect(page.status).to eq(200)
    cookie = page.headers["set-cookie"].to_s[/task_web_csrf=[^;]+/]
    token = page.body[/name="csrf" value="([^"]+)"/, 1]
    [cookie, CGI.unescapeHTML(token.to_s)]
  end

  def app_page?(response)
    response.headers["content-security-policy"].to_s.include?("default-src 'none'") &&
      response.headers["x-content-type-options"] == "nosniff" && response.body.include?("<header>")
  end

  describe "reads a bounded number of rows a page view" do
    budget = 50_000
    shape = [["huge", 60_000]] + (0...40).map { |i| [format("small-%02d", i), 500] }
    let(:adapter) do
      options = { **cassandra_options, tasks_table_name: :web_budget, page_size: 500 }
      @budget_schema ||= Task::DataInterface::CassandraAdapter.new(**options).create_schema
      Task::DataInterface::CassandraAdapter.new(**options)
    end
    let(:rows) { [0] }

    before do
      # Built once (80,000 rows, a few seconds), reused by later runs.
      names = adapter.lists.to_a
      (names - shape.map(&:first)).each { |name| adapter.delete_list(name) }
      shape.each do |name, size|
        next if names.include?(name) && adapter.count(name) == size

        adapter.delete_list(name)
        (0...size).each_slice(10_000) do |slice|
          adapter.store_many(slice.map { |i| FetchFile.build(task_list: name, id: format("%06d", i), n: i) })
        end
      end
      counter = rows
      @subscriber = Task.subscribe { |e| counter[0] += e.payload[:count].to_i if e.name == "all.task" }
      adapter.singleton_class.prepend(Module.new do
        define_method(:count) { |l| super(l).tap { |n| counter[0] += n } }
        define_method(:lists) { super().map { |name| counter[0] += 1; name } }
        define_method(:claims) { |l| super(l).tap { |c| counter[0] += c.size } }
        define_method(:find) { |l, id| super(l, id).tap { counter[0] += 1 } }
      end)
    end

    after { Task.unsubscribe(@subscriber) }

    def read_by(path, query: nil)
      rows[0] = 0
      response = get(path, query: query)
      [response, rows[0]]
    end

    it "on the index, the list pages and the stale view, whatever the store holds" do
      index, read = read_by("/")
      report "GET / on 41 lists, 80,000 tasks: #{read} rows read"
      expect(index.status).to eq(200)
      expect(read).to be <= budget
      expect(index.body).to match(%r{small-07</a></td><td>500</td>})
      expect(index.body).to match(%r{huge</a></td><td>at least [\d,]+</td>})

      page, read = read_by("/lists/huge")
      expect(page.status).to eq(200)
      expect(read).to be <= budget

      counted, read = read_by("/lists/huge", query: "count=1")
      expect(read).to be <= budget
      expect(counted.body).to include("at least 50,000 tasks")
      counted, = read_by("/lists/small-03", query: "count=1")
      expect(counted.body).to include("500 tasks")

      # Nothing is ten years old (the rows are reused by later runs, so an hour is not safe):
      # the stale view reads its budget, then offers to go on.
      stale, read = read_by("/lists/huge/stale", query: "older_than=315360000")
      expect(stale.status).to eq(200)
      expect(read).to be <= budget
      seen = 0
      views = 0
      loop do
        seen += stale.body[/Read ([\d,]+) tasks/, 1].to_s.delete(",").to_i
        link = stale.body[%r{href="/lists/huge/stale\?([^"]+)"[^>]*>Continue}, 1]
        break unless link

        stale, read = read_by("/lists/huge/stale", query: CGI.unescapeHTML(link))
        expect(read).to be <= budget
        views += 1
      end
      expect(seen).to eq(60_000)
      expect(views).to eq(1)

      old, read = read_by("/lists/huge/stale", query: "older_than=0")
      expect(read).to be <= budget
      expect(old.body.scan(%r{<a href="/lists/huge/tasks/\d+">}).size).to eq(50)
      expect(Task::Web::ROW_BUDGET).to eq(budget)
    end
  end

  describe "rows that cannot become tasks" do
    before do
      (0...120).each { |i| FetchFile.create(task_list: list, id: format("t%03d", i), n: i) }
      adapter.store_row(task_list: list, id: "t010x", type: "FetchFile", data: "{not json <b>")
      adapter.store_row(task_list: list, id: "t050x", type: "FetchFile", data: nil)
      adapter.store_row(task_list: list, id: "t099x", type: "Nowhere::Gone", data: '{"a":1}')
    end

    it "are shown as rows on every page of the list, its stale view and their own page, and can be completed" do
      ids = []
      response = get(path("lists", list))
      pages = 0
      loop do
        expect(response.status).to eq(200)
        expect(app_page?(response)).to be(true)
        ids.concat(response.body.scan(%r{<a href="/lists/[^/"]+/tasks/([^"]+)">}).flatten)
        pages += 1
        nxt = response.body[/rel="next" href="[^"?]+\?([^"]+)"/, 1]
        break unless nxt

        response = get(path("lists", list), query: CGI.unescapeHTML(nxt))
      end
      expect(ids).to eq(((0...120).map { |i| format("t%03d", i) } + %w[t010x t050x t099x]).sort)
      expect(pages).to eq(3)
      expect(get(path("lists", list)).body).to include("{not json &lt;b&gt;")
      expect(get(path("lists", list), query: "after=t048").body).to include("stored data is null")
      expect(get(path("lists", list), query: "after=t098").body).to include("Nowhere::Gone")

      stale = get(path("lists", list, "stale"), query: "older_than=0")
      expect(stale.status).to eq(200)
      expect(stale.body).to include("t010x")

      own = get(path("lists", list, "tasks", "t050x"))
      expect(own.status).to eq(200)
      expect(own.body).to include("stored data is null")
      expect(own.body).to include(">Complete</button>")
      cookie, token = session_for(path("lists", list, "tasks", "t050x"))
      done = post(path("lists", list, "tasks", "t050x", "complete"), { "csrf" => token }, cookie: cookie)
      expect(done.status).to eq(303)
      expect(adapter.rows(list).map { |r| r[:id] }).not_to include("t050x")
      expect(get(path("lists", list, "tasks", "t099x")).body).to include("Nowhere::Gone")
    end

    it "are served by README's bare config.ru, in a process that loads no task class" do
      (0...60).each { |i| FetchFile.create(task_list: list, id: format("b%03d", i), n: i) }
      # The server's process: the store's address set as an initializer would, then config.ru.
      o = cassandra_options
      script = <<~RUBY
        require "rack"
        require "rack/mock"
        require "task"
        store = Task::DataInterface::CassandraAdapter.new(hosts: #{o[:hosts].inspect}, port: #{o[:port]}, keyspace: #{o[:keyspace].inspect})
        Task::Task.interface = Task::DataInterface::Interface.new(adapter: store)
        app = Rack::Builder.new { eval(File.read(ARGV[0]), binding, ARGV[0]) }.to_app
        abort "FetchFile is loaded" if defined?(FetchFile)
        %w[/lists/#{list} /lists/#{list}?after=b049 /lists/#{list}/tasks/b007].each do |p|
          res = Rack::MockRequest.new(app).get(p)
          puts [res.status, res.body.scan(%r{/tasks/(b\\d+)(?:/complete)?">}).flatten.uniq.size, res.body.include?("FetchFile")].join(" ")
        end
      RUBY
      config = File.join(Dir.mktmpdir, "config.ru")
      File.write(config, %(require "task/web"\nrun Task::Web.new\n))
      out, err, status = Open3.capture3(RbConfig.ruby, "-I", File.expand_path("../lib", __dir__), "-e", script, config)
      expect(status.success?).to be(true), err
      expect(out.lines.map(&:split)).to eq([%w[200 50 true], %w[200 10 true], %w[200 1 true]])
    end
  end

  describe "CSRF" do
    before { FetchFile.create(task_list: list, id: "keep") }

    let(:task_path) { path("lists", list, "tasks", "keep") }

    it "refuses a token planted as a cookie by a page on the same site" do
      planted = post("#{task_path}/complete", { "csrf" => "planted" }, cookie: "task_web_csrf=planted")
      expect(planted.status).to eq(403)
      expect(adapter.find(list, "keep")).not_to be_nil
      forged = "#{SecureRandom.urlsafe_base64(24)}--#{SecureRandom.hex(16)}"
      planted = post("#{task_path}/complete", { "csrf" => forged }, cookie: "task_web_csrf=#{forged}")
      expect(planted.status).to eq(403)
      expect(adapter.find(list, "keep")).not_to be_nil
    end

    it "refuses a valid token sent from another origin or site, and takes it from the page's own" do
      cookie, token = session_for(task_path)
      other = post("#{task_path}/complete", { "csrf" => token }, cookie: cookie, headers: { "HTTP_ORIGIN" => "http://127.0.0.1:9999" })
      expect(other.status).to eq(403)
      sibling = post("#{task_path}/complete", { "csrf" => token }, cookie: cookie, headers: { "HTTP_SEC_FETCH_SITE" => "same-site" })
      expect(sibling.status).to eq(403)
      expect(adapter.find(list, "keep")).not_to be_nil
      # A planted cookie beside the real one does not lock the operator out.
      ok = post("#{task_path}/complete", { "csrf" => token }, cookie: "task_web_csrf=planted; #{cookie}",
                                                               headers: { "HTTP_ORIGIN" => "http://example.org", "HTTP_HOST" => "example.org",
                                                                          "HTTP_SEC_FETCH_SITE" => "same-origin" })
      expect(ok.status).to eq(303)
      expect(adapter.find(list, "keep")).to be_nil
    end

    it "answers 404, not found, to completing or retrying a task that is not stored" do
      cookie, token = session_for(task_path)
      missing = path("lists", list, "tasks", "missing")
      %w[complete retry].each do |action|
        res = post("#{missing}/#{action}", { "csrf" => token }, cookie: cookie)
        expect(res.status).to eq(404)
        expect(res.body).to include("Not found: no task missing in #{list}.")
      end
      expect(adapter.find(list, "keep")).not_to be_nil
    end

    it "takes the key from secret: so that every process of a server accepts the others' tokens" do
      one = described_class.new(adapter: adapter, secret: "s" * 32)
      two = described_class.new(adapter: adapter, secret: "s" * 32)
      cookie, token = session_for(task_path, app: one)
      expect(post("#{task_path}/release", { "csrf" => token }, cookie: cookie, app: described_class.new(adapter: adapter)).status).to eq(403)
      expect(post("#{task_path}/release", { "csrf" => token }, cookie: cookie, app: two).status).to eq(303)
    end
  end

  describe "hostile requests" do
    before { FetchFile.create(task_list: list, id: "t1") }

    it "get the app's own 400 or 404 page with its headers, never a bare 500" do
      cases = [
        [path("lists", list, "stale"), "older_than=-1", 400], [path("lists", list, "stale"), "older_than=1e400", 400],
        [path("lists", list, "stale"), "older_than=abc", 400], [path("lists", list), "after[]=x", 400],
        [path("lists", list), "after=%", 400], [path("lists", list), "after=%FF", 400],
        ["/lists/%FF%FE", nil, 400], ["/lists/%FF%FE/tasks/%C0", nil, 400], ["/nowhere", nil, 404],
        [path("lists", list, "tasks", "missing"), nil, 404], [path("lists", list), "after=#{"x" * 70_000}", 200],
        ["/lists/a%00b", nil, 200], [path("lists", list, "tasks", "t1"), "notice[]=1", 400]
      ]
      cases.each do |p, q, want|
        response = get(p, query: q)
        expect([p, q&.slice(0, 20), response.status]).to eq([p, q&.slice(0, 20), want])
        expect(app_page?(response)).to be(true), "#{p}?#{q&.slice(0, 20)}: #{response.body[0, 200]}"
      end
      form = post(path("lists", list, "tasks", "t1", "retry"), "csrf[]=x")
      expect(form.status).to eq(403)
      expect(app_page?(form)).to be(true)
      bad_form = request("POST", path("lists", list, "tasks", "t1", "retry"),
                         env: { input: "csrf=%", "CONTENT_TYPE" => "application/x-www-form-urlencoded" })
      expect(bad_form.status).to eq(400)
      expect(app_page?(bad_form)).to be(true)
    end

    it "answers OPTIONS and other methods 405 with Allow" do
      %w[OPTIONS PUT DELETE PATCH].each do |verb|
        response = request(verb, "/")
        expect(response.status).to eq(405)
        expect(response.headers["allow"]).to eq("GET, HEAD, POST")
        expect(app_page?(response)).to be(true)
      end
    end

    it "shows no notice an outside link wrote" do
      page = get(path("lists", list, "tasks", "t1"), query: "notice=#{Rack::Utils.escape("Your session expired: call +1 555 0100")}")
      expect(page.status).to eq(200)
      expect(page.body).not_to include("session expired")
      cookie, token = session_for(path("lists", list, "tasks", "t1"))
      done = post(path("lists", list, "tasks", "t1", "retry"), { "csrf" => token }, cookie: cookie)
      expect(done.status).to eq(303)
      location = URI(done.headers["location"])
      followed = get(location.path, query: location.query, cookie: cookie)
      expect(followed.body).to include("Retried: attempts and last error cleared.")
      tampered = location.query.sub(/notice=[^&]+/) { |v| "#{v[0..-2]}#{v[-1] == "A" ? "B" : "A"}" }
      expect(get(location.path, query: tampered).body).not_to include("Retried")
    end

    it "shows control and bidi characters of stored names, ids and data escaped" do
      # A table of its own, so that the index shows this list whatever other specs left.
      own = Task::DataInterface::CassandraAdapter.new(**cassandra_options, tasks_table_name: :web_display)
      own.create_schema
      own.lists.each { |name| own.delete_list(name) }
      use_adapter(own)
      odd_list = "#{list}-inv\u202Ecod.exe"
      FetchFile.create(task_list: odd_list, id: "id\e[2J\u2066x\a", note: "n\u202Eote\u0085")
      app = described_class.new(adapter: own)
      get = ->(p, query: nil) { self.get(p, query: query, app: app) }
      bodies = [get.call("/").body, get.call(path("lists", odd_list)).body,
                get.call(path("lists", odd_list, "tasks", "id\e[2J\u2066x\a")).body,
                get.call(path("lists", odd_list, "stale"), query: "older_than=0").body]
      bodies.each do |body|
        expect(body).to include("inv\\u202Ecod.exe")
        expect(body).not_to match(/[\u202E\u2066\e\a\u0085]/)
      end
      expect(bodies[1]).to include("id\\e[2J\\u2066x\\a")
      expect(bodies[2]).to include("n\\u202Eote\\u0085")
    ensure
      own&.delete_list(odd_list)
    end
  end
end
