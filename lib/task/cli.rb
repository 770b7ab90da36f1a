# frozen_string_literal: true

require "json"
require "optparse"
require "securerandom"
require "time"
require "yaml"
require "task"

module Task
  # The `task` command (exe/task): an operator's view of the stored tasks, on the public API
  # only. Exit codes: 0 done, 1 failed (the store refused, a task is missing, a check did not
  # pass), 2 usage (an unknown command or option, a missing argument, a refused --memory).
  class CLI
    USAGE = <<~TEXT
      Usage: task [connection options] COMMAND [arguments] [options]

      Commands:
        lists                           the lists that hold tasks
        count LIST                      how many tasks LIST holds
        ls LIST [--after ID] [--limit N] [--json]
                                        the tasks of LIST in id order, a page at a time
        show LIST ID                    one task: data, saved_at, attempts, last error, claim
        stale LIST --older-than AGE     tasks saved more than AGE ago (30s, 15m, 1h, 2d)
        dead LIST                       tasks whose attempts are used up
        retry LIST ID | --all-dead      make a dead task (or all of LIST's) claimable again
        complete LIST ID                delete a task: it is done
        release LIST ID                 give up the claim on a task, whoever holds it
        export LIST                     every task of LIST to stdout, one JSON line each
        import [FILE]                   store the tasks of JSON lines (stdin without FILE)
        doctor                          check the connection, tables and a round trip

      Connection options (or TASK_CASSANDRA_HOSTS=host:port,..., TASK_CASSANDRA_KEYSPACE, or
      a YAML file of CassandraAdapter options given with --config):
        --hosts HOST[:PORT],...  --port PORT  --keyspace NAME  --table NAME
        --username NAME  --password SECRET  --config FILE  --memory (doctor only)
      -r, --require FILE: load the application's task classes first (else tasks of classes not
      loaded are shown, exported and imported as the rows they are stored as).

      Destructive commands (retry, complete, release) ask first on a terminal; elsewhere they
      need --yes. `task COMMAND --help` describes one command.
      Exit status: 0 done, 1 failed, 2 usage error.
    TEXT

    HELP = {
      "lists" => "task lists\n  The names of the lists that hold tasks, one a line.",
      "count" => "task count LIST\n  How many tasks LIST holds (read a page at a time).",
      "ls" => "task ls LIST [--after ID] [--limit N] [--json]\n  The tasks of LIST in id order: id, type, " \
              "saved_at and data; --json prints each task's as_json form, one a line. With --limit, the " \
              "last line on stderr says how to get the next page (--after, never an offset).",
      "show" => "task show LIST ID\n  One task, its data pretty-printed, with saved_at, attempts, last error " \
                "and claim owner. Exit 1 when it is not stored.",
      "stale" => "task stale LIST --older-than AGE\n  The tasks saved more than AGE ago (seconds, or 30s, 15m, " \
                 "1h, 2d): what a recovery job would take.",
      "dead" => "task dead LIST\n  The tasks whose attempts are used up, with attempts and last error.",
      "retry" => "task retry LIST ID | task retry LIST --all-dead [--yes]\n  Clears the attempts and last " \
                 "error of a task (or of every dead one), so that it can be claimed again.",
      "complete" => "task complete LIST ID [--yes]\n  Deletes the task (and its claim): it is done.",
      "release" => "task release LIST ID [--yes]\n  Gives up the claim on the task, whoever holds it; the " \
                   "task stays for another worker.",
      "export" => "task export LIST > tasks.jsonl\n  Every task of LIST, one JSON line each (task.to_json). " \
                  "A progress line on stderr when it is a terminal.",
      "import" => "task import [FILE] [--on-bad-line stop|skip]\n  Stores the tasks of JSON lines (from " \
                  "export), from FILE or stdin. Saving is an upsert, so importing twice is harmless. A line " \
                  "that is not a task is reported with its number; the run stops there (stop, the default) " \
                  "or goes on (skip); either way the exit status is then 1.",
      "doctor" => "task doctor\n  Connects with the given settings and checks, each pass or fail with the " \
                  "fix: the hosts answer; the server's version; its clock against this one; the keyspace and " \
                  "its replication; the task table and its options for lists that churn (gc_grace_seconds, " \
                  "compaction); the claims table; and a task saved, read back and deleted."
    }.freeze

    # Raised for a usage error (exit status 2).
    class Usage < StandardError; end

    def self.start(argv, out: $stdout, err: $stderr, input: $stdin)
      new(out: out, err: err, input: input).run(argv)
    end

    def initialize(out:, err:, input:)
      @out = out
      @err = err
      @in = input
    end

    def run(argv)
      args = argv.dup
      options = parse_options!(args)
      command = args.shift
      if command.nil? || command == "help"
        @out.puts(USAGE)
        return command.nil? && !options[:help] ? 2 : 0
      end
      raise Usage, "unknown command #{command.inspect}" unless HELP.key?(command)

      if options[:help]
        @out.puts(HELP.fetch(command))
        return 0
      end
      @options = options
      # The application's task classes, so that its tasks are read as tasks.
      Array(options[:require]).each { |f| require File.expand_path(f) }
      send(:"cmd_#{command}", args)
    rescue Usage, OptionParser::ParseError => e
      @err.puts("task: #{e.message}")
      @err.puts("Run `task --help` for the commands and options.")
      2
    rescue ::Task::Error, ArgumentError => e
      @err.puts("task: #{e.class}: #{e.message}")
      1
    end

    private

    def parse_options!(args)
      o = {}
      OptionParser.new do |p|
        p.on("--hosts LIST") { |v| o[:hosts] = v }
        p.on("--port PORT", Integer) { |v| o[:port] = v }
        p.on("--keyspace NAME") { |v| o[:keyspace] = v }
        p.on("--table NAME") { |v| o[:tasks_table_name] = v }
        p.on("--username NAME") { |v| o[:username] = v }
        p.on("--password SECRET") { |v| o[:password] = v }
        p.on("--config FILE") { |v| o[:config] = v }
        p.on("--memory") { o[:memory] = true }
        p.on("-r", "--require FILE") { |v| (o[:require] ||= []) << v }
        p.on("--after ID") { |v| o[:after] = v }
        p.on("--limit N", Integer) { |v| o[:limit] = v }
        p.on("--json") { o[:json] = true }
        p.on("--older-than AGE") { |v| o[:older_than] = v }
        p.on("--all-dead") { o[:all_dead] = true }
        p.on("--on-bad-line MODE", %w[stop skip]) { |v| o[:on_bad_line] = v }
        p.on("--yes") { o[:yes] = true }
        p.on("-h", "--help") { o[:help] = true }
      end.parse!(args)
      o
    end

    # The adapter from flags, then the YAML file, then the environment.
    def adapter(**defaults)
      @adapter ||= begin
        raise Usage, "--memory has no meaning across processes (only `task doctor` takes it)" if @options[:memory]

        settings = {}
        if (file = @options[:config])
          loaded = YAML.safe_load(File.read(file)) || {}
          raise Usage, "#{file}: expected a mapping of adapter options" unless loaded.is_a?(Hash)

          settings.merge!(loaded.transform_keys(&:to_sym))
        end
        env_hosts = ENV.fetch("TASK_CASSANDRA_HOSTS", nil)
        settings.merge!(hosts_and_port(env_hosts)) if env_hosts && !settings.key?(:hosts)
        settings[:keyspace] ||= ENV["TASK_CASSANDRA_KEYSPACE"] if ENV["TASK_CASSANDRA_KEYSPACE"]
        settings.merge!(hosts_and_port(@options[:hosts])) if @options[:hosts]
        %i[port keyspace tasks_table_name username password].each do |k|
          settings[k] = @options[k] if @options.key?(k)
        end
        DataInterface::CassandraAdapter.new(**defaults, **settings)
      end
    end

    # Hosts as the adapter takes them ("host" or "host:port"), from a comma-separated list.
    def hosts_and_port(text)
      hosts = text.split(",").map(&:strip).reject(&:empty?)
      raise Usage, "no hosts in #{text.inspect}" if hosts.empty?

      { hosts: hosts }
    end

    def use_adapter
      ::Task::Task.interface = DataInterface::Interface.new(adapter: adapter)
    end

    def arguments(args, *names)
      missing = names.drop(args.size)
      raise Usage, "missing #{missing.join(" and ")}" unless missing.empty?
      raise Usage, "unexpected #{args.drop(names.size).join(" ")}" if args.size > names.size

      args
    end

    def confirm(what)
      return true if @options[:yes]
      raise Usage, "#{what}: add --yes (not on a terminal, nobody can be asked)" unless @in.tty?

      @err.print("#{what}? [y/N] ")
      answer = @in.gets.to_s.strip.downcase
      return true if %w[y yes].include?(answer)

      @err.puts("nothing done")
      false
    end

    def cmd_lists(args)
      arguments(args)
      use_adapter
      ::Task::Task.lists.each { |name| @out.puts(name) }
      0
    end

    def cmd_count(args)
      list, = arguments(args, "LIST")
      use_adapter
      @out.puts(::Task::Task.count(list))
      0
    end

    def cmd_ls(args)
      list, = arguments(args, "LIST")
      use_adapter
      limit = @options[:limit]
      raise Usage, "--limit must be at least 1" if limit && limit < 1

      shown = 0
      last = nil
      each_item(list, after: @options[:after]) do |item|
        break if limit && shown == limit

        @out.puts(@options[:json] ? json_line(item) || JSON.generate(item) : line_of(item))
        shown += 1
        last = item_id(item)
      end
      @err.puts("next page: task ls #{list} --after #{last} --limit #{limit}") if limit && shown == limit
      0
    end

    # Each task of the list in id order: a task, or (when this process cannot make one: its
    # class is not loaded here, see --require, or the row is bad) the row as stored.
    def each_item(list, after: nil, &block)
      rows = ->(row, _error) { block.call(row) }
      ::Task::Task.all(list, after: after, on_bad_row: rows).each(&block)
    end

    def item_id(item)
      item.is_a?(Hash) ? item[:id] : item.id
    end

    # A row as stored, as the JSON line a task of it would write (nil when its data is not a
    # JSON object).
    def json_line(item)
      return item.to_json unless item.is_a?(Hash)

      data = JSON.parse(item[:data].to_s)
      return nil unless data.is_a?(Hash)

      JSON.generate({ "task_list" => item[:task_list], "id" => item[:id], "data" => data, "type" => item[:type] })
    rescue JSON::ParserError
      nil
    end

    def line_of(item)
      if item.is_a?(Hash)
        return [item[:id], item[:type], "-", item[:data].nil? ? "(null data)" : item[:data]].join("\t")
      end

      [item.id, item.class.name, item.saved_at&.utc&.iso8601(6), JSON.generate(item.as_json["data"])].join("\t")
    end

    def cmd_show(args)
      list, id = arguments(args, "LIST", "ID")
      use_adapter
      task = begin
        ::Task::Task.find(list, id)
      rescue ::Task::Error::BadData
        # Its class is not loaded here (or the row is bad): the row as stored.
        adapter.rows(list).each.find { |r| r[:id] >= id }&.then { |r| r[:id] == id ? r : nil }
      end
      unless task
        @err.puts("task: no task #{id.inspect} in list #{list.inspect}")
        return 1
      end
      claim = claim_of(list, id)
      shown = if task.is_a?(Hash)
                { "task_list" => list, "id" => id, "type" => task[:type], "data" => task[:data],
                  "note" => "shown as stored: its class is not loaded here (see --require)" }
              else
                task.as_json.merge("saved_at" => task.saved_at&.utc&.iso8601(6))
              end
      shown.merge!("attempts" => claim ? claim[:attempts] : 0, "last_error" => claim && claim[:last_error],
                   "claimed_by" => claim && claim[:owner], "claim_expires_in" => claim && claim[:expires_in])
      @out.puts(JSON.pretty_generate(shown))
      0
    end

    def claim_of(list, id)
      ::Task::Task.interface.claim_info(list, id)
    rescue ::Task::Error::QueryRejected
      nil # no claims table: nothing claimed
    end

    def cmd_stale(args)
      list, = arguments(args, "LIST")
      age = @options[:older_than] or raise Usage, "stale needs --older-than AGE"
      use_adapter
      unknown = ->(row, _error) { @err.puts("task: #{row[:id]}: its age is unknown here (its class is not loaded: --require)") }
      ::Task::Task.older_than(list, seconds(age), on_bad_row: unknown).each { |task| @out.puts(line_of(task)) }
      0
    end

    def seconds(text)
      m = /\A(\d+(?:\.\d+)?)([smhd]?)\z/.match(text.strip) or raise Usage, "not an age: #{text.inspect} (30s, 15m, 1h, 2d)"
      Float(m[1]) * { "" => 1, "s" => 1, "m" => 60, "h" => 3600, "d" => 86_400 }.fetch(m[2])
    end

    def cmd_dead(args)
      list, = arguments(args, "LIST")
      use_adapter
      ::Task::Task.dead(list).each { |t| @out.puts([t.id, t.attempts, t.last_error].join("\t")) }
      0
    end

    def cmd_retry(args)
      if @options[:all_dead]
        list, = arguments(args, "LIST")
        use_adapter
        dead = ::Task::Task.dead(list)
        if dead.empty?
          @out.puts("no dead tasks in #{list}")
          return 0
        end
        return 0 unless confirm("retry #{dead.size} dead tasks of #{list}")

        dead.each(&:retry!)
        @out.puts("retried #{dead.size}")
      else
        list, id = arguments(args, "LIST", "ID")
        use_adapter
        return 0 unless confirm("retry task #{id} of #{list}")

        adapter.retry_task(list, id)
        @out.puts("retried #{id}")
      end
      0
    end

    def cmd_complete(args)
      list, id = arguments(args, "LIST", "ID")
      use_adapter
      return 0 unless confirm("complete (delete) task #{id} of #{list}")

      ::Task::Task.interface.delete(list, id)
      @out.puts("completed #{id}")
      0
    end

    def cmd_release(args)
      list, id = arguments(args, "LIST", "ID")
      use_adapter
      claim = claim_of(list, id)
      unless claim&.fetch(:owner)
        @err.puts("task: nobody holds a claim on #{id.inspect} of #{list.inspect}")
        return 1
      end
      return 0 unless confirm("release #{claim[:owner]}'s claim on task #{id} of #{list}")

      released = adapter.release(list, id, claim[:owner], nil)
      @out.puts(released ? "released #{id}" : "the claim changed hands meanwhile; nothing released")
      released ? 0 : 1
    end

    def cmd_export(args)
      list, = arguments(args, "LIST")
      use_adapter
      progress = Progress.new(@err, "exported", @err.tty? ? ::Task::Task.count(list) : nil)
      bad = 0
      each_item(list) do |item|
        line = json_line(item)
        if line
          @out.puts(line)
          progress.step
        else
          bad += 1
          @err.puts("task: row #{item[:id].inspect} not exported: its data is not a JSON object")
        end
      end
      progress.finish
      bad.zero? ? 0 : 1
    end

    # Tasks go to the store IMPORT_CHUNK at a time (store_many: batched by list).
    IMPORT_CHUNK = 1000

    def cmd_import(args)
      file, = args.size <= 1 ? args : arguments(args, "FILE")
      use_adapter
      source = file ? File.open(file) : @in
      @skip_bad = @options[:on_bad_line] == "skip"
      @progress = Progress.new(@err, "imported", nil)
      @bad = 0
      @stored = 0
      @pending = [] # [line number, task]
      stopped = catch(:stop) do
        source.each_line.with_index(1) do |line, number|
          next if line.strip.empty?

          import_line(line, number)
          flush_import if @pending.size >= IMPORT_CHUNK
        end
        flush_import
        false
      end
      @progress.finish
      return 1 if stopped

      @out.puts("imported #{@stored}#{", #{@bad} bad lines skipped" if @bad.positive?}")
      @bad.zero? ? 0 : 1
    ensure
      source.close if file && source
    end

    # One line: a task to store with the next chunk, a row stored now (its class is not
    # loaded here), or a bad line reported.
    def import_line(line, number)
      @pending << [number, ::Task::Task.from_json(line)]
    rescue NameError => e
      raise if e.is_a?(NoMethodError)

      flush_import # in order: what came before first
      guarded(number) { store_as_row(line) }
    rescue JSON::ParserError, ArgumentError, ::Task::Error::InvalidType => e
      flush_import
      bad_line(number, e)
    end

    def flush_import
      return if @pending.empty?

      chunk = @pending
      @pending = []
      begin
        @stored += adapter.store_many(chunk.map(&:last))
        chunk.size.times { @progress.step }
      rescue ArgumentError, ::Task::Error::BadData
        # One of them is bad, and store_many wrote none: one at a time, to name its line.
        chunk.each { |(number, task)| guarded(number) { adapter.store(task) } }
      end
    end

    def guarded(number)
      yield
      @stored += 1
      @progress.step
    rescue ArgumentError, ::Task::Error::BadData, ::Task::Error::InvalidType, JSON::ParserError => e
      bad_line(number, e)
    end

    def bad_line(number, error)
      @bad += 1
      @err.puts("task: line #{number}: #{error.message}")
      return if @skip_bad

      @err.puts("task: stopped at line #{number} (#{@stored} stored); --on-bad-line skip goes on past bad lines")
      throw :stop, true
    end

    # Writes the row a JSON line describes (its type kept), for a task whose class is not
    # loaded here: the application reads it as before.
    def store_as_row(line)
      h = JSON.parse(line)
      data = h["data"]
      raise ArgumentError, "data must be a JSON object, got #{JSON.generate(data)}" unless data.is_a?(Hash)

      type = h["type"]
      raise ArgumentError, "type must be a class name, got #{type.inspect}" unless type.is_a?(String) && type.match?(/\A[A-Z]\w*(::[A-Z]\w*)*\z/)

      adapter.store_row(task_list: h["task_list"], id: h["id"], type: type, data: JSON.generate(data))
    end

    def cmd_doctor(args)
      arguments(args)
      store = if @options[:memory]
                DataInterface::MemoryAdapter.new
              else
                # A check that fails should say so in seconds, not after 30 s of retries.
                adapter(connect_timeout: 3, retry_deadline: 5)
              end
      checks = Doctor.new(store).run
      checks.each do |(name, ok, detail, fix)|
        @out.puts("#{ok ? "pass" : "FAIL"}  #{name}: #{detail}")
        @out.puts("      fix: #{fix}") if !ok && fix
      end
      checks.all? { |c| c[1] } ? 0 : 1
    end

    # A progress line on a terminal: count, rate and (when the total is known) ETA.
    class Progress
      def initialize(io, verb, total)
        @io = io
        @verb = verb
        @total = total
        @count = 0
        @started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
        @shown = @started
        @tty = io.tty?
      end

      def step
        @count += 1
        return unless @tty

        now = Process.clock_gettime(Process::CLOCK_MONOTONIC)
        return if now - @shown < 0.2

        @shown = now
        rate = @count / (now - @started)
        eta = @total && rate.positive? ? format(", %ds left", (@total - @count) / rate) : ""
        of = @total ? " of #{@total}" : ""
        @io.print(format("\r%s %d%s (%.0f/s%s)   ", @verb, @count, of, rate, eta))
      end

      def finish
        @io.print("\r#{@verb} #{@count}#{" of #{@total}" if @total}            \n") if @tty
      end
    end

    # The checks of `task doctor`, each [name, passed, what was seen, the fix].
    class Doctor
      def initialize(adapter)
        @adapter = adapter
      end

      def run
        list = "task-doctor-#{SecureRandom.hex(4)}"
        checks = []
        report = nil
        begin
          before = Time.now
          report = @adapter.describe if @adapter.respond_to?(:describe)
          @adapter.count(list) unless report
          after = Time.now
          checks << ["hosts answer", true, "connected to #{describe}", nil]
        rescue ::Task::Error, SystemCallError => e
          checks << ["hosts answer", false, "#{e.class}: #{e.message}",
                     "check --hosts/--port, that the node runs and that its port is open"]
          return checks
        end
        table_ok = report ? schema_checks(checks, report, before, after) : true
        return checks unless table_ok

        unless report
          check(checks, "claims table", "run adapter.create_claims_table (or create_schema)") do
            @adapter.claims(list)
            "present"
          end
        end
        check(checks, "write, read and delete a task", "see the error; the user may lack INSERT/DELETE rights") do
          task = DoctorProbe.new(task_list: list, id: "probe", data: { at: Time.now.to_f })
          @adapter.store(task)
          @adapter.find(list, "probe") or raise ::Task::Error, "the saved task was not found"
          @adapter.delete(list, "probe")
          raise ::Task::Error, "the task was still there after delete" if @adapter.find(list, "probe")

          "saved, found and deleted"
        end
        checks
      end

      private

      # The server, keyspace, tables and clock, from what the node says; false when the task
      # table is missing (nothing more can be checked).
      def schema_checks(checks, report, before, after)
        o = @adapter.options
        checks << ["server", true, "Cassandra #{report[:release_version]}, CQL #{report[:cql_version]} " \
                                   "(the driver speaks native protocol v4)", nil]
        midpoint = before + (after - before) / 2
        skew = report[:server_time] - midpoint
        checks << ["clock", skew.abs <= 2, format("the server's clock is %+.3f s from this machine's", skew),
                   "synchronise both clocks (NTP): older_than and claims compare them"]
        replication = report[:replication]
        unless replication
          checks << ["keyspace", false, "#{o[:keyspace]} does not exist",
                     "create it and the tables: CassandraAdapter#create_schema (or check --keyspace)"]
          return false
        end
        checks << ["keyspace", true, "#{o[:keyspace]}, replication #{replication.map { |k, v| "#{k}=#{v}" }.join(", ")}", nil]
        table = o[:tasks_table_name].to_s
        tasks = report[:tables][table]
        unless tasks
          checks << ["task table", false, "#{o[:keyspace]}.#{table} does not exist",
                     "create it: CassandraAdapter#create_schema (or check --table)"]
          return false
        end
        compaction = tasks[:compaction]["class"].to_s.split(".").last
        tuned = tasks[:gc_grace_seconds] <= 86_400
        checks << ["task table", tuned, "#{o[:keyspace]}.#{table}: gc_grace_seconds #{tasks[:gc_grace_seconds]}, " \
                                        "compaction #{compaction}",
                   "give it the options for lists that churn: CassandraAdapter#tune_table(run: true) (README, Lists that churn)"]
        claims = report[:tables]["#{table}_claims"]
        checks << ["claims table", !claims.nil?, claims ? "present" : "#{o[:keyspace]}.#{table}_claims does not exist",
                   "run adapter.create_claims_table (or create_schema)"]
        true
      end

      def describe
        return "the memory store (this process only)" unless @adapter.is_a?(DataInterface::CassandraAdapter)

        o = @adapter.options
        "#{Array(o[:hosts]).join(",")}:#{o[:port]}, table #{o[:keyspace]}.#{o[:tasks_table_name]}"
      end

      def check(checks, name, fix)
        checks << [name, true, yield, nil]
        true
      rescue ::Task::Error, SystemCallError => e
        checks << [name, false, "#{e.class}: #{e.message}", fix]
        false
      end
    end

    # The task doctor writes and deletes again.
    class DoctorProbe
      include ::Task::Task
    end
  end
end
