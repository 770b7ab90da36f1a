# frozen_string_literal: true

require "open3"
require "pty"
require "shellwords"
require "tmpdir"
require "timeout"
require "yaml"
require "task/display"

# exe/taskrb given what an operator's store or files can hold: rows the server refuses, ids
# that are not there, broken settings files, stored names holding terminal controls.
RSpec.describe "the taskrb command, given hostile input" do
  include_context "the task command"
  let(:binmode) { true }
  let(:list) { unique_list("cli-hostile") }

  # A settings file for --config: the node's, and +extra+.
  def config_file(dir, **extra)
    path = File.join(dir, "task.yml")
    File.write(path, { "hosts" => options[:hosts], "port" => options[:port], "keyspace" => options[:keyspace] }
                       .merge(extra.transform_keys(&:to_s)).to_yaml)
    path
  end

  # What the command prints for stored text.
  def shown(text)
    Task::Display.visible(text)
  end

  before { use_adapter(adapter) }
  after { adapter.delete_list(list) }

  describe "import of a row the server refuses" do
    # Larger than the node's request limit (native_transport_max_frame_size, 16 MiB): the
    # node refuses the batch that carries it ("Request is too big").
    let(:lines) do
      (1..1501).map do |i|
        size = i == 500 ? 17_000_000 : 3
        FetchFile.build(task_list: list, id: format("%05d", i), filename: "y" * size).to_json
      end
    end

    it "names its line and goes on with --on-bad-line skip" do
      out, err, code = task_cmd("import", "--on-bad-line", "skip", input: lines.join("\n") << "\n")
      expect(err).to match(/^taskrb: line 500: .*Request is too big/)
      expect(err.lines.size).to eq(1)
      expect([out, code]).to eq(["imported 1500, 1 bad line skipped\n", 1])
      expect(adapter.count(list)).to eq(1500)
      expect(Task::Task.find(list, "01501")).not_to be_nil
      expect(Task::Task.find(list, "00500")).to be_nil

      # The same without the classes: each stored as the row it is, one at a time.
      adapter.delete_list(list)
      out, err, code = task_cmd("import", "--on-bad-line", "skip", input: lines.join("\n") << "\n", raw: true)
      expect(err).to match(/\Ataskrb: line 500: .*Request is too big.*\n\z/)
      expect([out, code]).to eq(["imported 1500, 1 bad line skipped\n", 1])
      expect(adapter.count(list)).to eq(1500)
    end

    it "names each of several refused rows of one chunk, and stops when the store refuses every row" do
      few = (1..20).map do |i|
        FetchFile.build(task_list: list, id: format("%05d", i), filename: "y" * ([5, 12].include?(i) ? 17_000_000 : 3)).to_json
      end
      out, err, code = task_cmd("import", "--on-bad-line", "skip", input: few.join("\n") << "\n")
      expect(err.lines.map { |l| l[/\Ataskrb: line (\d+): .*Request is too big/, 1] }).to eq(%w[5 12])
      expect([out, code]).to eq(["imported 18, 2 bad lines skipped\n", 1])
      expect(adapter.count(list)).to eq(18)

      # No such table: not a bad row, even with skip.
      out, err, code = task_cmd("import", "--on-bad-line", "skip", "--table", "no_such_table", input: few.first(3).join("\n"))
      expect([out, code]).to eq(["", 1])
      expect(err).to match(/\Ataskrb: line 1: .*no_such_table does not exist.*\n/)
        .and match(/^taskrb: the store failed on 3 of lines 1 to 3: not stored/)
        .and match(/^taskrb: stopped at line 1 \(0 stored\, lines 1 to 3 read\)\n\z/)
    end

    it "stops at it by default, with a summary naming the line" do
      out, err, code = task_cmd("import", input: lines.join("\n") << "\n")
      expect([out, code]).to eq(["", 1])
      expect(err).to match(/^taskrb: line 500: .*Request is too big/)
      # The other lines of its chunk were stored with it; the lines after the chunk are not read.
      expect(err).to match(/^taskrb: stopped at line 500 \(999 stored, lines 1 to 1000 read\)/)
      expect(adapter.count(list)).to eq(999)
    end
  end

  it "says a task is not found for complete and retry of a missing id (exit status 1)" do
    FetchFile.create(task_list: list, id: "here")
    %w[complete retry].each do |command|
      out, err, code = task_cmd(command, list, "nope", "--yes")
      expect([out, code]).to eq(["", 1]), "#{command}: #{out}"
      expect(err).to eq("taskrb: not found: no task \"nope\" in list \"#{list}\"\n")
      # Also without --yes: nothing to ask about.
      _, err, code = task_cmd(command, list, "nope")
      expect([err, code]).to match([/not found/, 1])
    end
    # A task whose class is not loaded is there all the same.
    out, _, code = task_cmd("retry", list, "here", "--yes", raw: true)
    expect([out, code]).to eq(["retried here\n", 0])
    out, _, code = task_cmd("complete", list, "here", "--yes", raw: true)
    expect([out, code]).to eq(["completed here\n", 0])
    expect(adapter.count(list)).to eq(0)
    _, err, code = task_cmd("show", list, "here")
    expect([err, code]).to match([/not found: no task "here"/, 1])
  end

  it "names the file and the problem of a bad settings or -r file on one line (exit status 2)" do
    Dir.mktmpdir do |dir|
      files = {
        "syntax.yml" => ["hosts: [a\n", /line 1 column 8: did not find expected ',' or '\]'/],
        "date.yml" => ["keyspace: 2024-01-01\n", /holds a Date/],
        "alias.yml" => ["a: &x 1\nport: *x\n", /alias/],
        "integer.yml" => ["1: x\n", /option names must be strings, got 1/],
        "list.yml" => ["- a\n", /expected a mapping of adapter options/],
        "unknown.yml" => ["bogus: 1\n", /unknown CassandraAdapter option :bogus/],
        "port.yml" => ["port: nine\n", /port must be an Integer/],
        "binary.yml" => ["keyspace: \xFF\xFE\n".b, /invalid|not UTF-8/]
      }
      files.each do |name, (text, problem)|
        path = File.join(dir, name)
        File.binwrite(path, text)
        _, err, code = task_cmd("count", list, "--config", path)
        expect([code, err.lines.size]).to eq([2, 1]), "#{name}: #{err}"
        expect(err).to start_with("taskrb: #{path}: ").and match(problem)
      end
      missing = File.join(dir, "missing.yml")
      _, err, code = task_cmd("count", list, "--config", missing)
      expect([err, code]).to eq(["taskrb: #{missing}: cannot read it: No such file or directory\n", 2])
      _, err, code = task_cmd("count", list, "--config", dir)
      expect([err, code]).to eq(["taskrb: #{dir}: cannot read it: Is a directory\n", 2])
      _, err, code = task_cmd("import", dir)
      expect([err.lines.first, code]).to eq(["taskrb: #{dir}: cannot read it: Is a directory\n", 2])

      app = File.join(dir, "app.rb")
      _, err, code = task_cmd("count", list, "-r", app)
      expect([err, code]).to eq(["taskrb: -r #{app}: cannot load it: no such file\n", 2])
      File.write(app, "class Broken\n  def x(\nend\n")
      _, err, code = task_cmd("count", list, "-r", app)
      expect([code, err.lines.size]).to eq([2, 1]), err
      expect(err).to start_with("taskrb: -r #{app}: SyntaxError: ")
      File.write(app, "\n\nUndefinedThing.call\n")
      _, err, code = task_cmd("count", list, "-r", app)
      expect([err, code]).to match([%r{\Ataskrb: -r #{Regexp.escape(app)}: NameError at #{Regexp.escape(app)}:3: uninitialized constant UndefinedThing\n\z}, 2])
    end
  end

  it "escapes control and bidi characters of stored names, ids and errors on the terminal" do
    hostile = "#{list}\e[2J\a\u202E\u009B"
    id = "id\e]0;pwned\a"
    limited = cassandra_adapter(max_attempts: 1)
    use_adapter(limited)
    task = FetchFile.create(task_list: hostile, id: id, filename: "f\e\u202E")
    FetchFile.create(task_list: hostile, id: "z", filename: "ok")
    expect(task.claim(for: 300, owner: "w")).to be(true)
    task.fail_attempt(RuntimeError.new("bad\e[31m\a"), owner: "w")
    adapter.store_row(task_list: hostile, id: "raw\e", type: "Foo\e", data: "{\"a\":\"\e\u202E\"}")
    raw_bytes = /[\e\a\u202E\u009B]/

    Dir.mktmpdir do |dir|
      config = config_file(dir, max_attempts: 1)
      outputs = {
        "lists" => task_cmd("lists"),
        "ls" => task_cmd("ls", hostile),
        "ls raw" => task_cmd("ls", hostile, raw: true),
        "ls --json" => task_cmd("ls", hostile, "--json"),
        "ls --limit" => task_cmd("ls", hostile, "--limit", "1"),
        "dead" => task_cmd("dead", hostile, "--config", config),
        "stale" => task_cmd("stale", hostile, "--older-than", "0"),
        "stale raw" => task_cmd("stale", hostile, "--older-than", "0", raw: true),
        "show" => task_cmd("show", hostile, id),
        "show missing" => task_cmd("show", hostile, "nope\e")
      }
      outputs.each do |name, (out, err, _)|
        text = (out + err).dup.force_encoding(Encoding::UTF_8)
        expect(text).not_to match(raw_bytes), "#{name}: #{text.inspect}"
      end
      expect(outputs["lists"][0].lines).to include("#{shown(hostile)}\n")
      expect(outputs["ls"][0]).to include("#{shown(id)}\tFetchFile\t")
      expect(outputs["ls raw"][0]).to include("#{shown("raw\e")}\t#{shown("Foo\e")}\t-\t#{shown("{\"a\":\"\e\u202E\"}")}\n")
      expect(outputs["ls --json"][0].lines.map { |l| JSON.parse(l)["id"] }).to include(id)
      expect(outputs["dead"][0]).to eq("#{shown(id)}\t1\t#{shown("RuntimeError: bad\e[31m\a")}\n")
      expect(outputs["stale"][0]).to include(shown(id))
      expect(outputs["stale raw"][1]).to include(shown("raw\e"))
      expect(JSON.parse(outputs["show"][0])).to include("task_list" => hostile, "id" => id)

      # Export to a terminal: the same JSON values, with what a terminal acts on escaped.
      exported = +""
      PTY.spawn(env, RbConfig.ruby, TaskCommand::EXE, "-r", TaskCommand::CLASSES, "export", hostile) do |reader, _writer, pid|
        begin
          reader.each_line { |l| exported << l }
        rescue Errno::EIO
          nil # the terminal closed: the command ended
        end
        Process.wait(pid)
      end
      exported.force_encoding(Encoding::UTF_8)
      expect(exported).not_to match(raw_bytes)
      expect(exported.lines.grep(/\A\{/).map { |l| JSON.parse(l)["data"] }).to include({ "filename" => "f\e\u202E" })

      # The confirmation asked on a terminal.
      transcript = +""
      PTY.spawn(env, RbConfig.ruby, TaskCommand::EXE, "complete", hostile, id) do |reader, writer, pid|
        Timeout.timeout(60) { transcript << reader.readpartial(200) until transcript.include?("[y/N]") }
        writer.puts("n")
        begin
          reader.each_line { |l| transcript << l }
        rescue Errno::EIO
          nil
        end
        Process.wait(pid)
      end
      transcript.force_encoding(Encoding::UTF_8)
      expect(transcript).to include("complete (delete) task #{shown(id)} of #{shown(hostile)}? [y/N]")
      expect(transcript).not_to match(raw_bytes)
    end
  ensure
    adapter.delete_list(hostile)
  end

  it "says in doctor the host and port given as host:port" do
    out, _, code = task_cmd("doctor", "--hosts", "#{options[:hosts].first}:#{options[:port]}")
    expect(code).to eq(0), out
    expect(out).to match(/^pass  hosts answer: connected to #{Regexp.escape(options[:hosts].first)}:#{options[:port]}, table/)
  end

  it "hints at the next page of ls shell-quoted, and only when there is one" do
    odd = "#{list} it's"
    ids = ["a b", "c'd", "e\e$x"]
    ids.each { |i| FetchFile.create(task_list: odd, id: i) }
    out, err, code = task_cmd("ls", odd, "--limit", "3")
    expect([out.lines.size, err, code]).to eq([3, "", 0]) # exactly one page: no next page
    out, err, code = task_cmd("ls", odd, "--limit", "4")
    expect([out.lines.size, err, code]).to eq([3, "", 0])

    _, err, code = task_cmd("ls", odd, "--limit", "1")
    expect(code).to eq(0)
    hint = err[/\Anext page: (.*)\n\z/, 1]
    expect(Shellwords.split(hint)).to eq(["taskrb", "ls", odd, "--after", "a b", "--limit", "1"])
    _, err, = task_cmd("ls", odd, "--limit", "2", "--json")
    hint = err[/\Anext page: (.*)\n\z/, 1]
    expect(Shellwords.split(hint)).to eq(["taskrb", "ls", odd, "--after", "c'd", "--limit", "2", "--json"])

    # An id holding a control character: quoted as $'...', which the shell reads back as it is.
    FetchFile.create(task_list: odd, id: "f")
    _, err, = task_cmd("ls", odd, "--after", "c'd", "--limit", "1")
    hint = err[/\Anext page: (.*)\n\z/, 1]
    expect(hint).not_to include("\e")
    words, = Open3.capture2("bash", "-c", "printf '%s\\0' #{hint}")
    expect(words.split("\0")).to eq(["taskrb", "ls", odd, "--after", "e\e$x", "--limit", "1"])
  ensure
    adapter.delete_list(odd)
  end

  it "shows and retries dead tasks whose classes it has not loaded (no -r)" do
    limited = cassandra_adapter(max_attempts: 1)
    use_adapter(limited)
    dead = FetchFile.create(task_list: list, id: "d")
    FetchFile.create(task_list: list, id: "alive")
    expect(dead.claim(for: 300, owner: "w")).to be(true)
    dead.fail_attempt(RuntimeError.new("disk full"), owner: "w")
    Dir.mktmpdir do |dir|
      config = config_file(dir, max_attempts: 1)
      out, err, code = task_cmd("dead", list, "--config", config, raw: true)
      expect([out, err, code]).to eq(["d\t1\tRuntimeError: disk full\n", "", 0])
      out, err, code = task_cmd("retry", list, "--all-dead", "--yes", "--config", config, raw: true)
      expect([out, err, code]).to eq(["retried 1\n", "", 0])
      expect(Task::Task.dead(list)).to eq([])
      out, _, code = task_cmd("retry", list, "--all-dead", "--yes", "--config", config, raw: true)
      expect([out, code]).to eq(["no dead tasks in #{list}\n", 0])
    end
    expect(Task::Task.find(list, "d").claim(for: 300, owner: "w2")).to be(true)
  end
end
