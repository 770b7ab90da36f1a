# frozen_string_literal: true

require "open3"
require "rbconfig"
require "rack/mock"
require "task/web"

# The task command and Task::Web on a SQLite file: `--sqlite PATH` or TASK_SQLITE_PATH.
RSpec.describe "the task command and Task::Web on SQLite" do
  root = File.expand_path("..", __dir__)

  let(:path) { SqliteFiles.fresh_path }
  let(:adapter) { sqlite_adapter(path: path) }
  let(:list) { unique_list("sqlcli") }

  def task_cmd(*args, env: {}, input: "")
    out, err, status = Open3.capture3({ "RUBYLIB" => File.join(File.expand_path("..", __dir__), "lib") }.merge(env),
                                      RbConfig.ruby, File.join(File.expand_path("..", __dir__), "exe", "taskrb"),
                                      "-r", File.join(__dir__, "support", "task_classes.rb"), *args, stdin_data: input)
    [out, err, status.exitstatus]
  end

  before do
    use_adapter(adapter)
    FetchFile.create(task_list: list, id: "a", filename: "a.txt")
    FetchFile.create(task_list: list, id: "b", filename: "b.txt")
  end

  it "lists, shows, completes, exports and imports with --sqlite PATH and TASK_SQLITE_PATH" do
    out, err, code = task_cmd("--sqlite", path, "lists")
    expect([out, err, code]).to match([/^#{list}$/, "", 0])
    out, _, code = task_cmd("ls", list, env: { "TASK_SQLITE_PATH" => path })
    expect(code).to eq(0)
    expect(out).to include("a", "b")
    out, _, code = task_cmd("--sqlite", path, "show", list, "a")
    expect(code).to eq(0)
    expect(out).to include("a.txt")
    original = adapter.rows(list).map { |r| r[:data] }.to_a
    exported, _, code = task_cmd("--sqlite", path, "export", list)
    expect(code).to eq(0)
    expect(exported.lines.size).to eq(2)
    _, _, code = task_cmd("--sqlite", path, "complete", list, "a", "--yes")
    expect(code).to eq(0)
    expect(adapter.find(list, "a")).to be_nil
    # Into another file: the same data, byte for byte.
    other = SqliteFiles.fresh_path("imported")
    _, err, code = task_cmd("--sqlite", other, "import", input: exported)
    expect([err, code]).to match(["", 0])
    copy = sqlite_adapter(path: other)
    expect(copy.rows(list).map { |r| r[:data] }.to_a).to eq(original)
  end

  it "passes task doctor, saying which file it checked" do
    out, _, code = task_cmd("--sqlite", path, "doctor")
    expect(code).to eq(0)
    expect(out).to include("SQLite", path, "saved, found and deleted")
  end

  it "serves a list page from Task::Web with adapter: SqliteAdapter.new(...)" do
    app = Task::Web.new(adapter: adapter)
    env = Rack::MockRequest.env_for("/")
    env["PATH_INFO"] = "/lists/#{list}"
    status, _headers, body = app.call(env)
    text = +""
    body.each { |part| text << part }
    expect(status).to eq(200)
    expect(text).to include(list, ">a<", ">b<")
  end
end
