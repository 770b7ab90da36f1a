# frozen_string_literal: true

require "json"
require "optparse"
require "time"
require "task"
require "task/cli/text"
require "task/cli/settings"
require "task/cli/import"
require "task/cli/progress"
require "task/cli/doctor"

module Task
  # The `taskrb` command (exe/taskrb): an operator's view of the stored tasks, on the public API
  # only. Exit codes: 0 done, 1 failed (the store refused, a task is missing, a check did not
  # pass), 2 usage (an unknown command or option, a missing argument, a store flag refused (--memory), a
  # settings or -r file that cannot be used). Stored text (list names, ids, errors) is shown
  # with control characters escaped (Task::Display).
  class CLI
    # The stores other than Cassandra that a flag picks: [adapter class, its cli_store] for
    # each adapter class that defines cli_store, a Hash of
    # * flag: the OptionParser switch ("--memory", "--sqlite PATH"),
    # * help: how the usage text shows it,
    # * env: an environment variable naming the store (optional; a flag wins over it),
    # * across_processes: false for a store only this process sees (doctor alone takes it),
    # * open: ->(value) { adapter } (value: the flag's argument or the variable's, true
    #   for a flag without one),
    # * describe: ->(adapter) { text } (optional): what `taskrb doctor` says it connected to,
    # * schema: ->(adapter) { text } (optional): what `taskrb schema create|tune` says of its
    #   tables (a store without create_schema makes them itself).
    def self.store_flags
      Signatures.adapter_classes.filter_map { |k| [k, k.cli_store] if k.respond_to?(:cli_store) }
    end

    USAGE = <<~TEXT
      Usage: taskrb [connection options] COMMAND [arguments] [options]

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
        schema create --replication-factor N | --replication DC:N,...
                      [--gc-grace-seconds S] [--no-claims]
                                        create the keyspace and tables where missing
        schema tune [--gc-grace-seconds S] [--run]
                                        the table options for lists that churn: shows the
                                        ALTER statements, runs them with --run
        doctor                          check the connection, tables and a round trip

      Connection options (or TASK_CASSANDRA_HOSTS=host:port,..., TASK_CASSANDRA_KEYSPACE, or
      a YAML file of CassandraAdapter options given with --config):
        --hosts HOST[:PORT],...  --port PORT  --keyspace NAME  --table NAME
        --username NAME  --password SECRET  --config FILE
      Other stores: #{CLI.store_flags.map { |(_, store)| store[:help] }.join("  ")}
      -r, --require FILE: load the application's task classes first (else tasks of classes not
      loaded are shown, exported and imported as the rows they are stored as).

      Destructive commands (retry, complete, release) ask first on a terminal; elsewhere they
      need --yes. `taskrb COMMAND --help` describes one command.
      Stored names, ids and errors are shown with control characters escaped (\\e, \\a, \\u202E).
      Exit status: 0 done, 1 failed, 2 usage error. A task not found is a failure; a settings or
      -r file that cannot be used is a usage error, named on one line.
    TEXT

    HELP = {
      "lists" => "taskrb lists\n  The names of the lists that hold tasks, one a line.",
      "count" => "taskrb count LIST\n  How many tasks LIST holds (read a page at a time).",
      "ls" => "taskrb ls LIST [--after ID] [--limit N] [--json]\n  The tasks of LIST in id order: id, type, " \
              "saved_at and data; --json prints each task's as_json form, one a line. With --limit, when " \
              "there is a next page, the last line on stderr is the command that shows it (--after, never " \
              "an offset), quoted for a shell.",
      "show" => "taskrb show LIST ID\n  One task, its data pretty-printed, with saved_at, attempts, last error " \
                "and claim owner. Exit 1 when it is not stored.",
      "stale" => "taskrb stale LIST --older-than AGE\n  The tasks saved more than AGE ago (seconds, or 30s, 15m, " \
                 "1h, 2d): what a recovery job would take. Exit 1 when some could not be judged: a row whose " \
                 "class is not loaded here carries no saved_at (give the application's classes with -r FILE).",
      "dead" => "taskrb dead LIST\n  The tasks whose attempts are used up, with attempts and last error.",
      "retry" => "taskrb retry LIST ID | taskrb retry LIST --all-dead [--yes]\n  Clears the attempts and last " \
                 "error of a task (or of every dead one), so that it can be claimed again. Exit 1 when the task is " \
                 "not stored.",
      "complete" => "taskrb complete LIST ID [--yes]\n  Deletes the task (and its claim): it is done. Exit 1 " \
                    "when it is not stored.",
      "release" => "taskrb release LIST ID [--yes]\n  Gives up the claim on the task, whoever holds it; the " \
                   "task stays for another worker.",
      "export" => "taskrb export LIST > tasks.jsonl\n  Every task of LIST, one JSON line each (task.to_json). " \
                  "A progress line on stderr when it is a terminal.",
      "import" => "taskrb import [FILE] [--on-bad-line stop|skip]\n  Stores the tasks of JSON lines (from " \
                  "export), from FILE or stdin, 1,000 at a time. Saving is an upsert, so importing twice is " \
                  "harmless. A line that is not a task, or whose row the server refuses (one too large for " \
                  "a request, 16 MiB by default), is reported with its number; the run stops there (stop, the " \
                  "default: the other lines of its chunk of 1,000 are stored, the summary says how many) or " \
                  "goes on (skip); either way the exit status is then 1. When the store itself fails (no " \
                  "table, no node answers) the run stops, whatever --on-bad-line says.",
      "schema" => "taskrb schema create --replication-factor N | --replication DC:N,... [--gc-grace-seconds S] " \
                  "[--no-claims]\ntaskrb schema tune [--gc-grace-seconds S] [--run]\n  create: creates the keyspace " \
                  "(SimpleStrategy with N replicas, or NetworkTopologyStrategy with N replicas in each datacenter " \
                  "DC), the task table and its claims table (not with --no-claims), each only where missing: a " \
                  "keyspace or table that exists is left as it is. The tables get the options for lists that " \
                  "churn, with gc_grace_seconds S (default 10800).\n  tune: prints the ALTER TABLE statements " \
                  "that give existing tables those options (a dry run: nothing changes); --run runs them. " \
                  "The SQLite and memory stores make their tables themselves: both say so and exit 0.",
      "doctor" => "taskrb doctor\n  Connects with the given settings and checks, each pass or fail with the " \
                  "fix: the hosts answer; the server's version; its clock against this one; the keyspace and " \
                  "its replication; the task table and its options for lists that churn (gc_grace_seconds, " \
                  "compaction); the claims table; and a task saved, read back and deleted."
    }.freeze

    # Raised for a usage error (exit status 2).
    class Usage < StandardError; end

    # Raised when the task a command names is not stored (exit status 1).
    class NotFound < StandardError; end

    # adapter: the store to use when no connection option or store flag names one (what the
    # application's configuration gives, for rake tasks run inside it).
    def self.start(argv, out: $stdout, err: $stderr, input: $stdin, adapter: nil)
      new(out: out, err: err, input: input, adapter: adapter).run(argv)
    end

    def initialize(out:, err:, input:, adapter: nil)
      @out = out
      @err = err
      @in = input
      @given_adapter = adapter
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
      Array(options[:require]).each { |f| Settings.require_file(f) }
      send(:"cmd_#{command}", args)
    rescue Usage, OptionParser::ParseError => e
      @err.puts(visible("taskrb: #{e.message}"))
      @err.puts("Run `taskrb --help` for the commands and options.")
      2
    rescue SettingsError => e
      @err.puts(visible("taskrb: #{e.message}"))
      2
    rescue NotFound => e
      @err.puts(visible("taskrb: not found: #{e.message}"))
      1
    rescue ::Task::Error, ArgumentError => e
      @err.puts(visible("taskrb: #{e.class}: #{e.message}"))
      1
    end

    private

    def visible(text)
      Text.visible(text)
    end

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
        CLI.store_flags.each do |(adapter_class, store)|
          p.on(store[:flag]) { |v| o[:store] = [adapter_class, v] }
        end
        p.on("-r", "--require FILE") { |v| (o[:require] ||= []) << v }
        p.on("--after ID") { |v| o[:after] = v }
        p.on("--limit N", Integer) { |v| o[:limit] = v }
        p.on("--json") { o[:json] = true }
        p.on("--older-than AGE") { |v| o[:older_than] = v }
        p.on("--all-dead") { o[:all_dead] = true }
        p.on("--on-bad-line MODE", %w[stop skip]) { |v| o[:on_bad_line] = v }
        p.on("--yes") { o[:yes] = true }
        p.on("--replication-factor N", Integer) { |v| o[:replication_factor] = v }
        p.on("--replication LIST") { |v| o[:replication] = v }
        p.on("--gc-grace-seconds SECONDS", Integer) { |v| o[:gc_grace_seconds] = v }
        p.on("--no-claims") { o[:claims] = false }
        p.on("--run") { o[:run] = true }
        p.on("-h", "--help") { o[:help] = true }
      end.parse!(args)
      o
    end

    # The store a flag (or its environment variable) picks, or nil; +in_process+: a store only
    # this process sees will do.
    def picked_store(in_process: false)
      adapter_class, value = @options[:store] || CLI.store_flags.filter_map do |(k, store)|
        [k, ENV.fetch(store[:env])] if store[:env] && !ENV.fetch(store[:env], "").empty?
      end.first
      return nil unless adapter_class

      store = adapter_class.cli_store
      if store[:across_processes] == false && !in_process
        raise Usage, "#{store[:flag]} has no meaning across processes (only `taskrb doctor` and `taskrb schema` take it)"
      end

      begin
        store[:open].call(value)
      rescue ArgumentError, TypeError => e
        raise SettingsError, e.message
      end
    end

    # The adapter from a store flag or connection options, then the one given to start, then
    # a store the environment names, then the YAML file and the environment's Cassandra hosts.
    def adapter(**defaults)
      @adapter ||= picked_or_given || begin
        settings = {}
        settings.merge!(Settings.read_config(@options[:config])) if @options[:config]
        env_hosts = ENV.fetch("TASK_CASSANDRA_HOSTS", nil)
        settings.merge!(hosts_and_port(env_hosts)) if env_hosts && !settings.key?(:hosts)
        settings[:keyspace] ||= ENV["TASK_CASSANDRA_KEYSPACE"] if ENV["TASK_CASSANDRA_KEYSPACE"]
        settings.merge!(hosts_and_port(@options[:hosts])) if @options[:hosts]
        %i[port keyspace tasks_table_name username password].each do |k|
          settings[k] = @options[k] if @options.key?(k)
        end
        begin
          DataInterface::CassandraAdapter.new(**defaults, **settings)
        rescue ArgumentError, TypeError => e
          raise SettingsError, e.message
        end
      end
    end

    # A store flag's store, else the adapter given to start, else a store the environment names.
    def picked_or_given(in_process: false)
      (@options[:store] && picked_store(in_process: in_process)) || given_adapter || picked_store(in_process: in_process)
    end

    # The adapter given to start, unless a connection option names another store.
    def given_adapter
      return nil if @given_adapter.nil?
      return nil if @options[:config] || @options[:hosts] ||
                    %i[port keyspace tasks_table_name username password].any? { |k| @options.key?(k) }

      @given_adapter
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
      raise Usage, "#{visible(what)}: add --yes (not on a terminal, nobody can be asked)" unless @in.tty?

      @err.print("#{visible(what)}? [y/N] ")
      answer = @in.gets.to_s.strip.downcase
      return true if %w[y yes].include?(answer)

      @err.puts("nothing done")
      false
    end

    def cmd_lists(args)
      arguments(args)
      use_adapter
      ::Task::Task.lists.each { |name| @out.puts(visible(name)) }
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
      more = false
      each_item(list, after: @options[:after]) do |item|
        if limit && shown == limit
          more = true # a task past the page: there is a next one
          break
        end

        @out.puts(@options[:json] ? Text.json(json_line(item) || JSON.generate(item)) : line_of(item))
        shown += 1
        last = item_id(item)
      end
      @err.puts("next page: #{next_page(list, last, limit)}") if more
      0
    end

    # The command that shows the page after +last+, quoted for a shell.
    def next_page(list, last, limit)
      words = ["taskrb", "ls", list, "--after", last, "--limit", limit.to_s]
      words << "--json" if @options[:json]
      words.map { |w| Text.shell_word(w) }.join(" ")
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

    # A task (or a row) on one line, its fields tab-separated, each shown visibly (a tab in a
    # field as \t).
    def line_of(item)
      fields = if item.is_a?(Hash)
                 [item[:id], item[:type], "-", item[:data].nil? ? "(null data)" : item[:data]]
               else
                 [item.id, item.class.name, item.saved_at&.utc&.iso8601(6), JSON.generate(item.as_json["data"])]
               end
      fields.map { |f| visible(f.to_s) }.join("\t")
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
      raise NotFound, missing(list, id) unless task
      claim = claim_of(list, id)
      shown = if task.is_a?(Hash)
                { "task_list" => list, "id" => id, "type" => task[:type], "data" => task[:data],
                  "note" => "shown as stored: its class is not loaded here (see --require)" }
              else
                task.as_json.merge("saved_at" => task.saved_at&.utc&.iso8601(6))
              end
      shown.merge!("attempts" => claim ? claim[:attempts] : 0, "last_error" => claim && claim[:last_error],
                   "claimed_by" => claim && claim[:owner], "claim_expires_in" => claim && claim[:expires_in])
      @out.puts(Text.json(JSON.pretty_generate(shown)))
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
      unjudged = [] # [row, error]: rows this process cannot make a task of, whose age it cannot know
      ::Task::Task.older_than(list, seconds(age), on_bad_row: ->(row, error) { unjudged << [row, error] })
                  .each { |task| @out.puts(line_of(task)) }
      return 0 if unjudged.empty?

      unloaded, bad = unjudged.partition { |(row, _)| !class_loaded?(row[:type]) }
      @err.puts(visible("taskrb: #{unloaded_text(list, unloaded.map(&:first))}")) unless unloaded.empty?
      bad.each do |(row, error)|
        @err.puts(visible("taskrb: #{row[:id].inspect} of #{list}: its age is unknown: #{error.message}"))
      end
      1
    end

    # Whether +name+ names a class loaded here.
    def class_loaded?(name)
      Object.const_defined?(name.to_s) && Object.const_get(name.to_s).is_a?(Module)
    rescue NameError
      false
    end

    # Why the ages of +rows+ (as stored, their classes not loaded here) are unknown, and what to do.
    def unloaded_text(list, rows)
      types = rows.map { |r| r[:type] }.uniq
      ids = rows.first(5).map { |r| r[:id].inspect }
      ids << "..." if rows.size > 5
      classes = "class#{"es" unless types.size == 1} (#{types.first(5).join(", ")}#{", ..." if types.size > 5})"
      "#{rows.size} task#{"s" unless rows.size == 1} of #{list} could not be judged: #{rows.size == 1 ? "its" : "their"} " \
        "#{classes} #{types.size == 1 ? "is" : "are"} not loaded here and a row as stored carries no saved_at " \
        "(#{ids.join(", ")}); give the application's task classes with -r FILE"
    end

    def seconds(text)
      m = /\A(\d+(?:\.\d+)?)([smhd]?)\z/.match(text.strip) or raise Usage, "not an age: #{text.inspect} (30s, 15m, 1h, 2d)"
      Float(m[1]) * { "" => 1, "s" => 1, "m" => 60, "h" => 3600, "d" => 86_400 }.fetch(m[2])
    end

    def cmd_dead(args)
      list, = arguments(args, "LIST")
      use_adapter
      dead_claims(list).each do |c|
        @out.puts([visible(c[:id]), c[:attempts], visible(c[:last_error].to_s)].join("\t"))
      end
      0
    end

    # The claim states ({ id:, attempts:, last_error: }) of the list's dead tasks: attempts
    # used up, the task still stored. Read from the claims, so that it needs no task class
    # loaded (Task::Task.dead builds each task).
    def dead_claims(list)
      limit = adapter.max_attempts
      return [] unless limit

      adapter.claims(list).select { |c| c[:attempts] >= limit && stored?(list, c[:id]) }
    end

    # Whether the task is stored, whether or not its class is loaded here.
    def stored?(list, id)
      !::Task::Task.find(list, id).nil?
    rescue ::Task::Error::BadData
      true # a row is stored, which this process cannot make a task of
    end

    def missing(list, id)
      "no task #{id.inspect} in list #{list.inspect}"
    end

    def cmd_retry(args)
      if @options[:all_dead]
        list, = arguments(args, "LIST")
        use_adapter
        dead = dead_claims(list)
        if dead.empty?
          @out.puts(visible("no dead tasks in #{list}"))
          return 0
        end
        return 0 unless confirm("retry #{dead.size} dead tasks of #{list}")

        dead.each { |c| adapter.retry_task(list, c[:id]) }
        @out.puts("retried #{dead.size}")
      else
        list, id = arguments(args, "LIST", "ID")
        use_adapter
        raise NotFound, missing(list, id) unless stored?(list, id)
        return 0 unless confirm("retry task #{id} of #{list}")

        adapter.retry_task(list, id)
        @out.puts(visible("retried #{id}"))
      end
      0
    end

    def cmd_complete(args)
      list, id = arguments(args, "LIST", "ID")
      use_adapter
      raise NotFound, missing(list, id) unless stored?(list, id)
      return 0 unless confirm("complete (delete) task #{id} of #{list}")

      ::Task::Task.interface.delete(list, id)
      @out.puts(visible("completed #{id}"))
      0
    end

    def cmd_release(args)
      list, id = arguments(args, "LIST", "ID")
      use_adapter
      claim = claim_of(list, id)
      unless claim&.fetch(:owner)
        @err.puts(visible("taskrb: nobody holds a claim on #{id.inspect} of #{list.inspect}"))
        return 1
      end
      return 0 unless confirm("release #{claim[:owner]}'s claim on task #{id} of #{list}")

      released = adapter.release(list, id, claim[:owner], nil)
      @out.puts(visible(released ? "released #{id}" : "the claim changed hands meanwhile; nothing released"))
      released ? 0 : 1
    end

    def cmd_export(args)
      list, = arguments(args, "LIST")
      use_adapter
      progress = Progress.new(@err, "exported", @err.tty? ? ::Task::Task.count(list) : nil)
      terminal = @out.tty? # the same JSON, with what a terminal acts on escaped
      bad = 0
      each_item(list) do |item|
        line = json_line(item)
        if line
          @out.puts(terminal ? Text.json(line) : line)
          progress.step
        else
          bad += 1
          @err.puts(visible("taskrb: row #{item[:id].inspect} not exported: its data is not a JSON object"))
        end
      end
      progress.finish
      bad.zero? ? 0 : 1
    end

    def cmd_import(args)
      file, = args.size <= 1 ? args : arguments(args, "FILE")
      use_adapter
      source = begin
        raise Errno::EISDIR, file if file && File.directory?(file)

        file ? File.open(file) : @in
      rescue SystemCallError => e
        raise Usage, "#{file}: cannot read it: #{e.message.sub(/ (@|-) .*\z/m, "")}"
      end
      progress = Progress.new(@err, "imported", nil)
      import = Import.new(adapter, @err, skip: @options[:on_bad_line] == "skip", progress: progress)
      finished = import.run(source)
      progress.finish
      return 1 unless finished

      skipped = ", #{import.bad} bad line#{"s" unless import.bad == 1} skipped" if import.bad.positive?
      @out.puts("imported #{import.stored}#{skipped}")
      import.bad.zero? ? 0 : 1
    ensure
      source.close if file && source
    end

    def cmd_schema(args)
      action, = arguments(args, "create|tune")
      raise Usage, "unknown schema command #{action.inspect} (create or tune)" unless %w[create tune].include?(action)

      store = picked_or_given(in_process: true) || adapter
      unless store.respond_to?(:create_schema) && store.respond_to?(:tune_table)
        @out.puts(visible("#{own_tables(store)}; nothing to #{action}"))
        return 0
      end
      action == "create" ? schema_create(store) : schema_tune(store)
    end

    # What a store that makes its own tables says of them (its cli_store's schema:).
    def own_tables(store)
      text = store.class.cli_store[:schema] if store.class.respond_to?(:cli_store)
      return "#{store.class.name} makes its tables itself" unless text

      text.respond_to?(:call) ? text.call(store) : text
    end

    # create_schema with the options given, then what the node has.
    def schema_create(store)
      o = @options
      if o.key?(:replication_factor) && o.key?(:replication)
        raise Usage, "schema create takes --replication-factor or --replication, not both"
      end
      unless o.key?(:replication_factor) || o.key?(:replication)
        raise Usage, "schema create needs --replication-factor N (N replicas, one datacenter) or --replication " \
                     "DC:N,... (N replicas in each named datacenter)"
      end

      options = o.key?(:replication) ? { replication: replication(o[:replication]) } : { replication_factor: o[:replication_factor] }
      options[:gc_grace_seconds] = o[:gc_grace_seconds] if o.key?(:gc_grace_seconds)
      options[:claims] = false if o[:claims] == false
      before = store.describe
      store.create_schema(**options)
      after = store.describe
      keyspace = store.options[:keyspace]
      table = store.options[:tasks_table_name].to_s
      shown = after[:replication]&.map { |k, v| "#{k}=#{v.to_s.delete_prefix("org.apache.cassandra.locator.")}" }&.join(", ")
      @out.puts(visible("keyspace #{keyspace}: #{before[:replication] ? "present, left as it was" : "created"} (#{shown})"))
      [table, ("#{table}_claims" unless options[:claims] == false)].compact.each do |name|
        @out.puts(visible("table #{keyspace}.#{name}: #{before[:tables][name] ? "present, left as it was" : "created"}"))
      end
      0
    end

    # "dc1:3,dc2:3" as create_schema's replication: Hash.
    def replication(text)
      pairs = text.split(",").map(&:strip).reject(&:empty?).map do |pair|
        m = /\A([^:\s]+):(\d+)\z/.match(pair) or raise Usage, "--replication: #{pair.inspect} is not DC:N (e.g. dc1:3)"
        [m[1], Integer(m[2], 10)]
      end
      raise Usage, "--replication: no datacenters in #{text.inspect} (e.g. dc1:3,dc2:3)" if pairs.empty?

      pairs.to_h
    end

    # tune_table's statements, run with --run.
    def schema_tune(store)
      keyspace = store.options[:keyspace]
      table = store.options[:tasks_table_name].to_s
      tables = store.describe[:tables]
      missing = [table, "#{table}_claims"].reject { |name| tables[name] }
      unless missing.empty?
        @err.puts(visible("taskrb: #{missing.map { |name| "#{keyspace}.#{name}" }.join(" and ")} " \
                          "#{missing.size == 1 ? "does" : "do"} not exist: `taskrb schema create` makes " \
                          "#{missing.size == 1 ? "it" : "them"} (same connection options); nothing changed"))
        return 1
      end

      options = { run: @options[:run] == true }
      options[:gc_grace_seconds] = @options[:gc_grace_seconds] if @options.key?(:gc_grace_seconds)
      statements = store.tune_table(**options)
      statements.each { |cql| @out.puts(visible("#{cql};")) }
      @out.puts(if options[:run]
                  "-- applied (#{statements.size} statements)"
                else
                  "-- a dry run: nothing changed. `taskrb schema tune --run` runs these (or paste them into cqlsh)."
                end)
      0
    end

    def cmd_doctor(args)
      arguments(args)
      # A check that fails should say so in seconds, not after 30 s of retries.
      store = picked_or_given(in_process: true) || adapter(connect_timeout: 3, retry_deadline: 5)
      checks = Doctor.new(store).run
      checks.each do |(name, ok, detail, fix)|
        @out.puts(visible("#{ok ? "pass" : "FAIL"}  #{name}: #{detail}"))
        @out.puts(visible("      fix: #{fix}")) if !ok && fix
      end
      checks.all? { |c| c[1] } ? 0 : 1
    end

  end
end
