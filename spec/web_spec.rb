# frozen_string_literal: true

require "net/http"
require "task/web"
require "capybara/rspec"
require "selenium-webdriver"

# Task::Web in a real browser (headless Chromium driven by Selenium through Capybara), served
# by WEBrick, over the real Cassandra node.
Capybara.register_driver(:headless_chromium) do |app|
  options = Selenium::WebDriver::Chrome::Options.new
  options.binary = "/usr/bin/chromium"
  %w[--headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage --window-size=1280,900].each do |a|
    options.add_argument(a)
  end
  service = Selenium::WebDriver::Service.chrome(path: "/usr/bin/chromedriver")
  Capybara::Selenium::Driver.new(app, browser: :chrome, options: options, service: service)
end
Capybara.server = :webrick
Capybara.default_max_wait_time = 10

RSpec.describe Task::Web, type: :feature do
  root = File.expand_path("..", __dir__)
  let(:adapter) { cassandra_adapter(page_size: 500) }
  let(:list) { unique_list("web") }

  before do
    use_adapter(adapter)
    Capybara.app = Task::Web.new(adapter: adapter)
    Capybara.current_driver = :headless_chromium
  end

  after { Capybara.use_default_driver }

  def ids_on_page
    all("tbody tr td:first-child a").map(&:text)
  end

  it "pages through a 10,000-task list by an after-id cursor, at 375 px too" do
    adapter.store_many((0...10_000).map { |i| FetchFile.build(task_list: list, id: format("%05d", i), n: i) })
    visit "/"
    expect(page).to have_link(list)
    # The index reads a bounded share of each list; the list's page counts it on request.
    expect(find("tr", text: list)).to have_text(/at least [\d,]+|10,000/)
    click_link list
    click_link "Count"
    expect(page).to have_text("10,000 tasks.")
    expect(ids_on_page).to eq((0...50).map { |i| format("%05d", i) })
    3.times do |k|
      click_link "Next 50"
      expect(ids_on_page).to eq(((k + 1) * 50...(k + 2) * 50).map { |i| format("%05d", i) })
    end
    expect(page).to have_current_path(%r{/lists/#{list}\?after=00149})
    visit "/lists/#{list}?after=09979"
    expect(ids_on_page).to eq((9980...10_000).map { |i| format("%05d", i) })
    expect(page).not_to have_link("Next 50")

    FileUtils.mkdir_p(File.join(root, "tmp"))
    shot = ENV["TASK_WEB_SCREENSHOT"] || File.join(root, "tmp", "list-page.png")
    visit "/lists/#{list}"
    page.save_screenshot(shot)
    expect(File.size(shot)).to be > 1000

    page.driver.browser.manage.window.resize_to(375, 800)
    visit "/lists/#{list}"
    expect(ids_on_page.size).to eq(50)
    width = page.evaluate_script("document.documentElement.scrollWidth")
    expect(width).to be <= 375
    visit "/lists/#{list}/tasks/00007"
    expect(page).to have_button("Complete")
    expect(page.evaluate_script("document.documentElement.scrollWidth")).to be <= 375
  ensure
    page.driver.browser.manage.window.resize_to(1280, 900)
  end

  it "shows a dead task and retries it; completes a task" do
    limited = cassandra_adapter(max_attempts: 1)
    Capybara.app = Task::Web.new(adapter: limited)
    use_adapter(limited)
    task = FetchFile.create(task_list: list, id: "broken", file: "a.txt")
    expect(task.claim(for: 300, owner: "worker-9")).to be(true)
    task.fail_attempt(RuntimeError.new("disk full"), owner: "worker-9")
    FetchFile.create(task_list: list, id: "fine")

    visit "/lists/#{list}/dead"
    expect(page).to have_text("RuntimeError: disk full")
    click_link "broken"
    expect(page).to have_text("Attempts")
    expect(find("dd", text: "RuntimeError: disk full")).to be_truthy
    click_button "Retry"
    expect(page).to have_text("Retried: attempts and last error cleared.")
    expect(Task::Task.dead(list)).to eq([])
    expect(Task::Task.find(list, "broken").claim(for: 300, owner: "worker-10")).to be(true)
    visit "/lists/#{list}/claimed"
    expect(page).to have_text("worker-10")
    expect(find("tr", text: "worker-10")).to have_text(/[45] min/) # lapses in 300 s
    click_link "broken"
    expect(find("dd", text: "worker-10")).to be_truthy
    expect(page).to have_text("Claim lapses in")

    visit "/lists/#{list}/tasks/fine"
    click_button "Complete"
    expect(page).to have_text("Completed fine.")
    expect(limited.find(list, "fine")).to be_nil
  end

  it "opens and completes tasks whose ids and lists hold slashes, dots, spaces, percent signs and question marks" do
    odd_list = "#{list}/sub dir?"
    ids = ["a/b", "../up", "50% off?", "x y#z", "/lead", "..", ".", "=eq", "é+ü"]
    ids.each { |id| FetchFile.create(task_list: odd_list, id: id, filename: "f #{id}") }
    visit "/"
    click_link odd_list
    ids.each do |id|
      click_link id
      expect(find("h1").text).to include(id)
      expect(find("pre").text).to include("f #{id}")
      click_button "Complete"
      expect(page).to have_text("Completed #{id}.")
      expect(adapter.find(odd_list, id)).to be_nil
    end
  end

  it "renders data as text, never as markup" do
    FetchFile.create(task_list: list, id: "<img src=x onerror=alert(1)>", note: "<script>alert('xss')</script>")
    visit "/lists/#{list}"
    expect(page).to have_text("<script>alert('xss')</script>")
    expect(page).to have_text("<img src=x onerror=alert(1)>")
    expect(page).to have_no_css("main script")
    expect(page).to have_no_css("main img")
    click_link "<img src=x onerror=alert(1)>"
    expect(find("pre").text).to include("<script>alert('xss')</script>")
    # An alert would have made every browser command since raise UnexpectedAlertOpenError.
    expect(page.evaluate_script("document.querySelectorAll('script').length")).to eq(0)
  end

  it "refuses a form posted from another port of the host with a cookie it planted (cookie tossing)" do
    FetchFile.create(task_list: list, id: "victim")
    visit "/lists/#{list}/tasks/victim" # the operator has the app open: its own cookie is set
    target = "#{Capybara.current_session.server.base_url}/lists/#{list}/tasks/victim/complete"
    # A page on the same site (same host, another port): it sets a token cookie of its own
    # choosing for the app's paths and posts that token.
    evil = lambda do |_env|
      [200, { "content-type" => "text/html", "set-cookie" => "task_web_csrf=planted; path=/lists" },
       ["<form method=\"post\" action=\"#{target}\"><input type=\"hidden\" name=\"csrf\" value=\"planted\">" \
        "<button type=\"submit\">Claim your prize</button></form>"]]
    end
    server = Capybara::Server.new(evil).boot
    visit "http://#{server.host}:#{server.port}/"
    click_button "Claim your prize"
    expect(page).to have_text("refused")
    expect(adapter.find(list, "victim")).not_to be_nil

    # The planted cookie stays in the browser beside the app's own; the operator's forms work.
    visit "/lists/#{list}/tasks/victim"
    click_button "Complete"
    expect(page).to have_text("Completed victim.")
    expect(adapter.find(list, "victim")).to be_nil
  end

  it "refuses a POST without the CSRF token, any action by GET, and every action when read-only" do
    FetchFile.create(task_list: list, id: "keep")
    visit "/lists/#{list}/tasks/keep" # a server and a page, as a user would have
    uri = URI.join(Capybara.current_session.server.base_url, "/lists/#{list}/tasks/keep/complete")
    response = Net::HTTP.post_form(uri, {})
    expect(response.code).to eq("403")
    expect(response.body).to include("CSRF token")
    response = Net::HTTP.post_form(uri, "csrf" => "guessed")
    expect(response.code).to eq("403")
    expect(Net::HTTP.get_response(uri).code).to eq("404")
    expect(adapter.find(list, "keep")).not_to be_nil

    home = Net::HTTP.get_response(URI.join(Capybara.current_session.server.base_url, "/"))
    expect(home["content-security-policy"]).to include("default-src 'none'", "form-action 'self'")
    expect(home["content-security-policy"]).not_to include("script-src")

    Capybara.app = Task::Web.new(adapter: adapter, read_only: true)
    Capybara.reset_sessions!
    visit "/lists/#{list}/tasks/keep"
    expect(page).to have_text("Read-only.")
    expect(page).to have_no_button("Complete")
  end
end
