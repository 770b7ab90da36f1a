# frozen_string_literal: true

require "open3"
require "pty"
require "shellwords"
require "tmpdir"
require "tempfile"
require "time"
require "timeout"
require "yaml"
require "stringio"
require "task/cli"

# exe/taskrb against the real node, run as an operator runs it: a separate process, settings
# from the environment or flags, output on stdout, messages on stderr, exit codes.
RSpec.describe "the taskrb command" do
  include_context "the task command"
  let(:list) { unique_list("cli") }

  before { use_adapter(adapter) }

  it "describes itself, and refuses what it cannot do with exit status 2" do
    out, _, code = task_cmd("--help")
    expect(code).to eq(0)
    expect(out).to start_with("Usage: taskrb [connection options] COMMAND")
    expect(out).to include("ls LIST [--after ID]", "schema create", "schema tune", "doctor",
                           "Exit status: 0 done, 1 failed, 2 usage error")
    _, err, code = task_cmd("nope")
    expect([err, code]).to eq(["taskrb: unknown command \"nope\"\nRun `taskrb --help` for the commands and options.\n", 2])
    out, _, code = task_cmd("import", "--help")
    expect([out, code]).to match([/--on-bad-line stop\|skip/, 0])
    _, err, code = task_cmd("frobnicate")
    expect([err, code]).to match([/unknown command "frobnicate"/, 2])
    _, err, code = task_cmd("count")
    expect([err, code]).to match([/missing LIST/, 2])
    _, err, code = task_cmd("count", list, "--memory")
    expect([err, code]).to match([/--memory has no meaning across processes/, 2])
    _, err, code = task_cmd("stale", list)
    expect([err, code]).to match([/--older-than/, 2])
    _, err, code = task_cmd("count", list, "--hosts", " , ")
    expect([err, code]).to match([/no hosts/, 2])
    expect(File.executable?(TaskCommand::EXE)).to be(true)
  end

  it "lists, counts, pages through and shows tasks" do
    adapter.store_many((1..25).map { |i| FetchFile.build(task_list: list, id: format("%03d", i), n: i, note: "<b>#{i}</b>") })
    out, _, code = task_cmd("count", list)
    expect([out, code]).to eq(["25\n", 0])
    out, = task_cmd("lists")
    expect(out.lines.map(&:chomp)).to include(list)

    out, err, code = task_cmd("ls", list, "--limit", "10")
    expect(code).to eq(0)
    ids = out.lines.map { |l| l.split("\t").first }
    expect(ids).to eq((1..10).map { |i| format("%03d", i) })
    expect(out.lines.first.split("\t")[1]).to eq("FetchFile")
    expect(err).to include("--after 010")
    out, = task_cmd("ls", list, "--after", "010", "--limit", "10", "--json")
    page = out.lines.map { |l| JSON.parse(l) }
    expect(page.map { |t| t["id"] }).to eq((11..20).map { |i| format("%03d", i) })
    expect(page.first).to eq(Task::Task.find(list, "011").as_json)

    out, _, code = task_cmd("show", list, "007")
    shown = JSON.parse(out)
    expect(code).to eq(0)
    expect(shown).to include("id" => "007", "type" => "FetchFile", "data" => { "n" => 7, "note" => "<b>7</b>" },
                             "attempts" => 0, "claimed_by" => nil)
    expect(Time.iso8601(shown["saved_at"])).to be_within(120).of(Time.now)
    _, err, code = task_cmd("show", list, "nope")
    expect([err, code]).to match([/no task "nope"/, 1])
  end

  it "shows, exports and imports tasks whose classes it has not loaded, as the rows they are" do
    FetchFile.create(task_list: list, id: "r1", filename: "a.txt")
    adapter.store_row(task_list: list, id: "r2", type: "FetchFile", data: nil) # a bad row
    out, _, code = task_cmd("ls", list, raw: true)
    expect(code).to eq(0)
    expect(out.lines.map { |l| l.chomp.split("\t") }).to eq([["r1", "FetchFile", "-", '{"filename":"a.txt"}'],
                                                            ["r2", "FetchFile", "-", "(null data)"]])
    out, _, code = task_cmd("show", list, "r1", raw: true)
    expect(code).to eq(0)
    expect(JSON.parse(out)).to include("type" => "FetchFile", "data" => '{"filename":"a.txt"}')
    exported, err, code = task_cmd("export", list, raw: true)
    expect(code).to eq(1)
    expect(err).to include('row "r2" not exported')
    expect(exported).to eq("#{Task::Task.find(list, "r1").to_json}\n")
    adapter.delete_list(list)
    out, _, code = task_cmd("import", input: exported, raw: true)
    expect([out, code]).to eq(["imported 1\n", 0])
    expect(Task::Task.find(list, "r1").data).to eq(filename: "a.txt")
  end

  it "completes, releases and retries only with --yes when nobody can be asked" do
    task = FetchFile.create(task_list: list, id: "a")
    _, err, code = task_cmd("complete", list, "a")
    expect([err, code]).to match([/add --yes/, 2])
    expect(Task::Task.find(list, "a")).not_to be_nil

    expect(task.claim(for: 300, owner: "worker-1")).to be(true)
    shown = JSON.parse(task_cmd("show", list, "a").first)
    expect(shown).to include("claimed_by" => "worker-1", "attempts" => 1)
    expect(shown["claim_expires_in"]).to be_between(200, 302) # a lease is kept up to 2 s beyond for:
    out, _, code = task_cmd("release", list, "a", "--yes")
    expect([out, code]).to eq(["released a\n", 0])
    expect(task.claim(for: 300, owner: "worker-2")).to be(true) # free again
    _, err, code = task_cmd("release", list, "missing", "--yes")
    expect([err, code]).to match([/nobody holds a claim/, 1])

    # On a terminal it asks; anything but y leaves the task.
    asked = lambda do |answer|
      transcript = +""
      command = [RbConfig.ruby, TaskCommand::EXE, "complete", list, "a"]
      PTY.spawn(env, *command) do |reader, writer, pid|
        Timeout.timeout(60) { transcript << reader.readpartial(200) until transcript.include?("[y/N]") }
        writer.puts(answer)
        begin
          reader.each_line { |l| transcript << l }
        rescue Errno::EIO
          nil
        end
        Process.wait(pid)
      end
      transcript
    end
    expect(asked.call("n")).to include("complete (delete) task a of #{list}? [y/N]", "nothing done")
    expect(Task::Task.find(list, "a")).not_to be_nil
    expect(asked.call("y")).to include("completed a")
    expect(Task::Task.find(list, "a")).to be_nil
  end

  it "shows dead tasks and retries them" do
    limited = cassandra_adapter(max_attempts: 1)
    use_adapter(limited)
    dead = FetchFile.create(task_list: list, id: "d")
    expect(dead.claim(for: 300, owner: "w")).to be(true)
    dead.fail_attempt(RuntimeError.new("disk full"), owner: "w")
    out, _, code = task_cmd("dead", list)
    # The command's adapter has the default max_attempts (25): one attempt is not dead there.
    expect([out, code]).to eq(["", 0])
    config = Tempfile.new(["task", ".yml"])
    config.write({ "hosts" => options[:hosts], "port" => options[:port], "keyspace" => options[:keyspace],
                   "max_attempts" => 1 }.to_yaml)
    config.close
    out, _, code = task_cmd("dead", list, "--config", config.path)
    expect([out, code]).to eq(["d\t1\tRuntimeError: disk full\n", 0])
    out, _, code = task_cmd("retry", list, "--all-dead", "--yes", "--config", config.path)
    expect([out, code]).to eq(["retried 1\n", 0])
    expect(Task::Task.dead(list)).to eq([])
    expect(Task::Task.find(list, "d").claim(for: 300, owner: "w2")).to be(true)
  ensure
    config&.unlink
  end

  it "lists stale tasks by age" do
    FetchFile.create(task_list: list, id: "old")
    sleep 1.2
    FetchFile.create(task_list: list, id: "new")
    out, _, code = task_cmd("stale", list, "--older-than", "1s")
    expect(code).to eq(0)
    expect(out.lines.map { |l| l.split("\t").first }).to eq(["old"])
    _, err, code = task_cmd("stale", list, "--older-than", "soon")
    expect([err, code]).to match([/not an age/, 2])

    # Without the application's classes a row's age is unknown (a row as stored carries no
    # saved_at): the command cannot say whether those are stale, so it fails, saying why.
    out, err, code = task_cmd("stale", list, "--older-than", "1s", raw: true)
    expect([out, code]).to eq(["", 1])
    expect(err).to eq("taskrb: 2 tasks of #{list} could not be judged: their class (FetchFile) is not loaded here " \
                      "and a row as stored carries no saved_at (\"new\", \"old\"); give the application's task " \
                      "classes with -r FILE\n")
    adapter.store_row(task_list: list, id: "ghost", type: "NotLoaded::Anywhere", data: "{}")
    out, err, code = task_cmd("stale", list, "--older-than", "1s")
    expect(out.lines.map { |l| l.split("\t").first }).to eq(["old"])
    expect([err, code]).to match([/\Ataskrb: 1 task of #{list} could not be judged: its class \(NotLoaded::Anywhere\)/, 1])
  end

  it "exports a list and imports it again, idempotently, reporting bad lines by number" do
    count = 2_000
    adapter.store_many((1..count).map { |i| FetchFile.build(task_list: list, id: format("%05d", i), n: i, tag: :x) })
    started = now
    exported, err, code = task_cmd("export", list)
    export_seconds = now - started
    expect([err, code]).to eq(["", 0]) # stderr is not a terminal: no progress line
    expect(exported.lines.size).to eq(count)
    expect(JSON.parse(exported.lines.first)).to eq(Task::Task.find(list, "00001").as_json)

    # On a terminal, a progress line: count, of how many, rate.
    Dir.mktmpdir do |dir|
      target = File.join(dir, "out.jsonl")
      command = [RbConfig.ruby, TaskCommand::EXE, "-r", TaskCommand::CLASSES, "export", list]
      shown = +""
      PTY.spawn(env, "sh", "-c", "#{command.shelljoin} > #{target.shellescape}") do |reader, _writer, pid|
        begin
          reader.each_line { |l| shown << l }
        rescue Errno::EIO
          nil # the terminal closed: the command ended
        end
        Process.wait(pid)
      end
      expect($?.exitstatus).to eq(0)
      expect(shown).to match(/exported #{count} of #{count}/)
      expect(File.read(target)).to eq(exported)
    end

    adapter.delete_list(list)
    started = now
    out, _, code = task_cmd("import", input: exported)
    import_seconds = now - started
    expect([out, code]).to eq(["imported #{count}\n", 0])
    out, = task_cmd("import", input: exported) # again: the same rows, nothing doubled
    expect(out).to eq("imported #{count}\n")
    expect(adapter.count(list)).to eq(count)
    expect(Task::Task.find(list, "01234").data).to eq(n: 1234, tag: "x")

    bad = exported.lines.first(3).join + "{not json\n" + '{"type":"Object","task_list":"l","id":"1","data":{}}' + "\n" +
          exported.lines[3]
    adapter.delete_list(list)
    _, err, code = task_cmd("import", input: bad)
    expect(code).to eq(1)
    expect(err).to match(/line 4: .*not a task's JSON/).and match(/stopped at line 4 \(3 stored\)/)
    expect(adapter.count(list)).to eq(3)
    out, err, code = task_cmd("import", "--on-bad-line", "skip", input: bad)
    expect(code).to eq(1)
    expect(err).to match(/line 4:/).and match(/line 5: .*Object/)
    expect(out).to eq("imported 4, 2 bad lines skipped\n")
    expect(adapter.count(list)).to eq(4)
    report format("taskrb export of %d tasks: %.1f s (%.0f/s, a process started included); import: %.1f s (%.0f/s)",
                  count, export_seconds, count / export_seconds, import_seconds, count / import_seconds)
  end

  it "creates and tunes the schema (schema create|tune), and doctor's fixes name them" do
    keyspace = "task_cli_#{SecureRandom.hex(4)}"
    bare = "#{keyspace}_bare"
    out, _, code = task_cmd("doctor", "--keyspace", keyspace)
    expect(code).to eq(1)
    expect(out).to match(/^FAIL  keyspace: #{keyspace} does not exist\n      fix: create it and the tables: taskrb schema create --replication-factor N/)
    _, err, code = task_cmd("schema", "create", "--keyspace", keyspace)
    expect([err, code]).to match([/schema create needs --replication-factor N .* or --replication DC:N,/, 2])
    _, err, code = task_cmd("schema", "create", "--keyspace", keyspace, "--replication", "datacenter1=1")
    expect([err, code]).to match([/--replication: "datacenter1=1" is not DC:N/, 2])
    _, err, code = task_cmd("schema", "drop")
    expect([err, code]).to match([/unknown schema command "drop"/, 2])

    # A grace period of 10 days: doctor says the table is not tuned for churn.
    out, err, code = task_cmd("schema", "create", "--keyspace", keyspace, "--replication", "datacenter1:1",
                              "--gc-grace-seconds", "864000")
    expect([out, err, code]).to eq([<<~TEXT, "", 0])
      keyspace #{keyspace}: created (class=NetworkTopologyStrategy, datacenter1=1)
      table #{keyspace}.tasks: created
      table #{keyspace}.tasks_claims: created
    TEXT
    out, = task_cmd("doctor", "--keyspace", keyspace)
    expect(out).to match(/^FAIL  task table: #{keyspace}\.tasks: gc_grace_seconds 864000, .*\n      fix: .*taskrb schema tune --run/)

    # tune: a dry run by default, the statements as cqlsh takes them.
    out, _, code = task_cmd("schema", "tune", "--keyspace", keyspace)
    expect(code).to eq(0)
    expect(out.lines.first(2)).to all(match(/\AALTER TABLE #{keyspace}\.tasks(_claims)? WITH gc_grace_seconds = 10800 AND compaction = \{.*\};\n\z/))
    expect(out.lines.last).to start_with("-- a dry run: nothing changed")
    expect(cassandra_adapter(keyspace: keyspace).describe[:tables]["tasks"][:gc_grace_seconds]).to eq(864_000)
    out, _, code = task_cmd("schema", "tune", "--keyspace", keyspace, "--run")
    expect([out.lines.last, code]).to eq(["-- applied (2 statements)\n", 0])
    tables = cassandra_adapter(keyspace: keyspace).describe[:tables]
    expect(tables.values.map { |t| t[:gc_grace_seconds] }).to eq([10_800, 10_800])
    out, _, code = task_cmd("doctor", "--keyspace", keyspace)
    expect(code).to eq(0), out
    expect(out).not_to include("FAIL")

    # Again: what exists is left as it is.
    out, _, code = task_cmd("schema", "create", "--keyspace", keyspace, "--replication-factor", "3")
    expect([out, code]).to match([/\Akeyspace #{keyspace}: present, left as it was \(class=NetworkTopologyStrategy, datacenter1=1\)\n.*tasks: present, left as it was\n/m, 0])

    # --no-claims: no claims table, which tune needs (it tunes both).
    out, _, code = task_cmd("schema", "create", "--keyspace", bare, "--replication-factor", "1", "--no-claims")
    expect([out, code]).to eq(["keyspace #{bare}: created (class=SimpleStrategy, replication_factor=1)\n" \
                               "table #{bare}.tasks: created\n", 0])
    out, err, code = task_cmd("schema", "tune", "--keyspace", bare, "--run")
    expect([out, err, code]).to eq(["", "taskrb: #{bare}.tasks_claims does not exist: `taskrb schema create` makes it " \
                                        "(same connection options); nothing changed\n", 1])

    # The stores that make their own tables say so.
    Dir.mktmpdir do |dir|
      path = File.join(dir, "tasks.sqlite3")
      out, _, code = task_cmd("schema", "create", "--sqlite", path)
      expect([out, code]).to eq(["the SQLite store makes its tables itself when it opens the file: #{path} has " \
                                 "them; nothing to create\n", 0])
      out, _, code = task_cmd("schema", "tune", "--memory")
      expect([out, code]).to eq(["the memory store has no tables: it lives in this process only; nothing to tune\n", 0])
      # The store an application configured (a rake task inside it passes it as adapter:).
      out = StringIO.new
      code = Task::CLI.start(%w[schema create], out: out, err: out, adapter: Task::DataInterface::SqliteAdapter.new(path: path))
      expect([out.string, code]).to eq(["the SQLite store makes its tables itself when it opens the file: #{path} has " \
                                        "them; nothing to create\n", 0])
      # ... over a store the environment names (the application's configuration already read it),
      # but not over a store flag.
      given = Task::DataInterface::MemoryAdapter.new
      other = File.join(dir, "other.sqlite3")
      begin
        ENV["TASK_SQLITE_PATH"] = other
        out = StringIO.new
        code = Task::CLI.start(%w[schema create], out: out, err: out, adapter: given)
        expect([out.string, code]).to eq(["the memory store has no tables: it lives in this process only; nothing to create\n", 0])
        out = StringIO.new
        code = Task::CLI.start(["schema", "create", "--sqlite", path], out: out, err: out, adapter: given)
        expect(out.string).to include("#{path} has them")
      ensure
        ENV.delete("TASK_SQLITE_PATH")
      end
    end
  ensure
    [keyspace, bare].each { |k| Cql.run("DROP KEYSPACE IF EXISTS #{k}") }
  end

  it "checks a deployment with doctor, and says what to fix" do
    out, _, code = task_cmd("doctor")
    expect(code).to eq(0), out
    expect(out).to match(/^pass  hosts answer: connected to 127\.0\.0\.1/)
    expect(out).to match(/^pass  server: Cassandra 5\.\d+\.\d+, CQL \d/)
    expect(out).to match(/^pass  clock: the server's clock is [-+]\d+\.\d+ s from this machine's/)
    expect(out).to match(/^pass  keyspace: #{options[:keyspace]}, replication .*SimpleStrategy/)
    expect(out).to match(/^pass  task table: #{options[:keyspace]}\.tasks: gc_grace_seconds 10800, compaction \w+/)
    expect(out).to match(/^pass  claims table/).and match(/^pass  write, read and delete a task/)
    expect(out).not_to include("FAIL")
    out, _, code = task_cmd("doctor", "--hosts", "127.0.0.1:9", "--config", "/dev/null")
    expect(code).to eq(1)
    expect(out).to match(/^FAIL  hosts answer: .*\n      fix: check --hosts/)
    out, _, code = task_cmd("doctor", "--keyspace", "no_such_keyspace_here")
    expect(code).to eq(1)
    expect(out).to match(/^pass  hosts answer/)
    expect(out).to match(/^FAIL  keyspace: no_such_keyspace_here does not exist\n      fix: create it and the tables/)
    out, _, code = task_cmd("doctor", "--table", "no_such_table")
    expect(code).to eq(1)
    expect(out).to match(/^FAIL  task table: .*no_such_table does not exist\n      fix: create it/)
    out, _, code = task_cmd("doctor", "--memory")
    expect(code).to eq(0)
    expect(out).to match(/^pass  hosts answer: connected to the memory store/)
  end
end
