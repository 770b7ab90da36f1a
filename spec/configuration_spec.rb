# frozen_string_literal: true

require "logger"
require "stringio"
require "tmpdir"

# The default store from one source: Task.configure, a YAML file of environments and the
# environment variables, under an explicit adapter_builder and Interface.new's own options.
RSpec.describe Task::Configuration do
  let(:io) { StringIO.new }
  let(:logger) { Logger.new(io).tap { |l| l.formatter = ->(sev, _t, _p, msg) { "#{sev} #{msg}\n" } } }
  let(:dir) { Dir.mktmpdir("task-config") }
  let(:variables) { %w[TASK_CASSANDRA_HOSTS TASK_CASSANDRA_KEYSPACE TASK_SQLITE_PATH] }

  around do |example|
    saved = variables.to_h { |v| [v, ENV.fetch(v, nil)] }
    variables.each { |v| ENV.delete(v) }
    Task.instance_variable_set(:@configuration, described_class.new)
    example.run
  ensure
    saved.each { |k, v| ENV[k] = v }
    Task.instance_variable_set(:@configuration, described_class.new)
    Task.logger = nil
    Task::Logging.driver_level = nil
    FileUtils.rm_rf(dir)
  end

  def default_adapter
    Task::Task.interface = nil
    Task::DataInterface::Interface.adapter_builder = nil
    Task.adapter
  end

  def write(name, text)
    File.join(dir, name).tap { |path| File.write(path, text) }
  end

  def quietly
    old = $stderr
    $stderr = StringIO.new
    yield
    $stderr.string
  ensure
    $stderr = old
  end

  describe "the environment, read by the library" do
    it "gives a Cassandra store its hosts (host or host:port, comma-separated) and keyspace" do
      ENV["TASK_CASSANDRA_HOSTS"] = "10.0.0.5:9142, 10.0.0.6"
      ENV["TASK_CASSANDRA_KEYSPACE"] = "from_env"
      adapter = default_adapter
      expect(adapter).to be_a(Task::DataInterface::CassandraAdapter)
      expect(adapter.options).to include(hosts: ["10.0.0.5:9142", "10.0.0.6"], keyspace: "from_env")
      expect(adapter.inspect).to include("hosts=10.0.0.5:9142,10.0.0.6:9042 keyspace=from_env")
    end

    it "picks SQLite with TASK_SQLITE_PATH when no store is set, and fills a SQLite store's path" do
      ENV["TASK_SQLITE_PATH"] = File.join(dir, "env.sqlite3")
      expect(default_adapter.options[:path]).to eq(File.join(dir, "env.sqlite3"))
      Task.configure { |c| c.store = :cassandra }
      expect(quietly { expect(default_adapter).to be_a(Task::DataInterface::CassandraAdapter) })
        .to include("no Cassandra hosts configured")
      Task.configure { |c| c.store = :sqlite }
      expect(default_adapter.options[:path]).to eq(File.join(dir, "env.sqlite3"))
    end

    it "fills only what Task.configure leaves unset; Interface.new's options win over both" do
      ENV["TASK_CASSANDRA_HOSTS"] = "10.0.0.5"
      ENV["TASK_CASSANDRA_KEYSPACE"] = "from_env"
      Task.configure { |c| c.options = { keyspace: "configured", consistency: :quorum } }
      expect(default_adapter.options).to include(hosts: ["10.0.0.5"], keyspace: "configured", consistency: :quorum)
      given = Task::DataInterface::Interface.new(keyspace: "given", port: 9999).adapter
      expect(given.options).to include(hosts: ["10.0.0.5"], keyspace: "given", port: 9999, consistency: :quorum)
      built = Task.configuration.build_adapter(keyspace: "built")
      expect(built.options).to include(hosts: ["10.0.0.5"], keyspace: "built", consistency: :quorum)
      expect { Task.configuration.build_adapter(hots: 1) }
        .to raise_error(ArgumentError, /\ATask\.configure: unknown CassandraAdapter option :hots/)
    end
  end

  describe "Task.configure" do
    it "sets the store and its options; an explicit adapter_builder still wins" do
      Task.configure do |c|
        c.store = :sqlite
        c.options = { path: File.join(dir, "configured.sqlite3"), synchronous: :normal }
      end
      adapter = default_adapter
      expect(adapter).to be_a(Task::DataInterface::SqliteAdapter)
      expect(adapter.options).to include(path: File.join(dir, "configured.sqlite3"), synchronous: :normal)
      expect(Task.configuration.build_adapter.options[:path]).to eq(File.join(dir, "configured.sqlite3"))

      Task::DataInterface::Interface.adapter_builder = ->(_) { Task::DataInterface::MemoryAdapter.new }
      expect(Task.adapter).to be_a(Task::DataInterface::MemoryAdapter)
      expect(Task.configuration.build_adapter).to be_a(Task::DataInterface::SqliteAdapter)
      Task::DataInterface::Interface.adapter_builder = nil
      expect(Task.adapter).to be_a(Task::DataInterface::SqliteAdapter)
    end

    it "rebuilds Task::Task.interface, and saves go to the store configured" do
      Task.configure { |c| c.store = :memory }
      FetchFile.create(task_list: "configured", id: "1", filename: "a")
      expect(Task.adapter.find("configured", "1").filename).to eq("a")
      Task.configure { |c| c.store = :memory }
      expect(Task::Task.find("configured", "1")).to be_nil
    end

    it "refuses what the store's adapter refuses, naming it, and keeps the configuration before" do
      Task.configure { |c| c.store = :memory }
      expect { Task.configure { |c| c.options = { pagesize: 3 } } }
        .to raise_error(ArgumentError, /\ATask\.configure: unknown MemoryAdapter option :pagesize \(accepted: :page_size/)
      expect { Task.configure { |c| c.store = :cassandra; c.options = { port: "x" } } }
        .to raise_error(ArgumentError, /\ATask\.configure: .*port/)
      expect { Task.configure { |c| c.store = :redis } }
        .to raise_error(ArgumentError, "Task.configure: store: :redis is not a store (one of cassandra, memory, sqlite)")
      expect { Task.configure { |c| c.store = :sqlite; c.options = { path: 7 } } }
        .to raise_error(ArgumentError, "Task.configure: path must be a non-empty String, got 7")
      expect { Task.configure { |c| c.options = { logger: logger } } }
        .to raise_error(ArgumentError, /logger is not a store option here: set Task.logger/)
      expect(Task.configuration.store).to eq(:memory)
      expect(Task.configuration.options).to eq({})
      expect(default_adapter).to be_a(Task::DataInterface::MemoryAdapter)
    end

    it "sets Task.logger and the driver's log level" do
      Task.configure do |c|
        c.logger = logger
        c.driver_log_level = :warn
      end
      expect(Task.logger).to be(logger)
      expect(Task::Logging.driver_level).to eq(:warn)
    end
  end

  describe "a YAML file" do
    let(:file) do
      write("task.yml", <<~YAML)
        default: &default
          store: cassandra
          hosts: <%= ENV.fetch("TASK_SPEC_HOSTS", "10.0.0.7") %>
          keyspace: app_tasks
        production:
          <<: *default
          consistency: :local_quorum
        development:
          store: sqlite
          path: db/dev.sqlite3
        test:
          store: memory
          max_attempts: 3
      YAML
    end

    it "gives the section of the environment, with ERB, aliases and merge keys, relative paths from root" do
      Task.configure { |c| c.load_file(file, environment: "production") }
      expect(Task.configuration.source).to eq("#{file} (production)")
      expect(default_adapter.options).to include(hosts: ["10.0.0.7"], keyspace: "app_tasks", consistency: :local_quorum)

      Task.configure { |c| c.load_file(file, environment: "development", root: dir) }
      expect(default_adapter.options[:path]).to eq(File.join(dir, "db", "dev.sqlite3"))
      expect(File.file?(File.join(dir, "db", "dev.sqlite3"))).to be(true) # db/ made

      Task.configure { |c| c.load_file(file, environment: :test) }
      expect(default_adapter).to be_a(Task::DataInterface::MemoryAdapter)
      expect(default_adapter.max_attempts).to eq(3)
    end

    it "wins over the environment, and Task.configure after it wins over it" do
      ENV["TASK_CASSANDRA_HOSTS"] = "10.9.9.9"
      ENV["TASK_CASSANDRA_KEYSPACE"] = "from_env"
      Task.configure { |c| c.load_file(file, environment: "production") }
      expect(default_adapter.options).to include(hosts: ["10.0.0.7"], keyspace: "app_tasks")
      Task.configure { |c| c.options = c.options.merge(keyspace: "from_initializer") }
      expect(default_adapter.options).to include(hosts: ["10.0.0.7"], keyspace: "from_initializer")
    end

    it "without a section for the environment sets nothing" do
      Task.configure { |c| c.load_file(file, environment: "staging") }
      expect(Task.configuration.store).to be_nil
    end

    it "is refused with the file, the environment and the key named" do
      bad = write("bad.yml", "production:\n  store: cassandra\n  hots: [a]\n")
      expect { Task.configure { |c| c.load_file(bad, environment: "production") } }
        .to raise_error(ArgumentError, /\A#{Regexp.escape(bad)} \(production\): unknown CassandraAdapter option :hots \(accepted: /)
      bad = write("store.yml", "test:\n  store: cassandar\n")
      expect { Task.configure { |c| c.load_file(bad, environment: "test") } }
        .to raise_error(ArgumentError, "#{bad} (test): store: \"cassandar\" is not a store (one of cassandra, memory, sqlite)")
      bad = write("type.yml", "test:\n  store: memory\n  page_size: many\n")
      expect { Task.configure { |c| c.load_file(bad, environment: "test") } }
        .to raise_error(ArgumentError, /\A#{Regexp.escape(bad)} \(test\): .*page_size/)
      bad = write("sqlite.yml", "test:\n  store: sqlite\n  path: [1]\n  synchronous: sometimes\n")
      expect { Task.configure { |c| c.load_file(bad, environment: "test") } }
        .to raise_error(ArgumentError, /\A#{Regexp.escape(bad)} \(test\): path must be a non-empty String, got \[1\]/)
      bad = write("sync.yml", "test:\n  store: sqlite\n  path: x.sqlite3\n  synchronous: sometimes\n")
      expect { Task.configure { |c| c.load_file(bad, environment: "test") } }
        .to raise_error(ArgumentError, /\A#{Regexp.escape(bad)} \(test\): .*synchronous/)
      expect(File.exist?(File.join(dir, "x.sqlite3"))).to be(false) # checking opens nothing
      bad = write("flat.yml", "test: memory\n")
      expect { Task.configure { |c| c.load_file(bad, environment: "test") } }
        .to raise_error(ArgumentError, "#{bad} (test): expected a mapping of store: and its options, got a string")
      bad = write("syntax.yml", "test:\n  store: [memory\n")
      expect { Task.configure { |c| c.load_file(bad, environment: "test") } }
        .to raise_error(ArgumentError, /\A#{Regexp.escape(bad)}: line \d+ column \d+: /)
      bad = write("erb.yml", "test:\n  store: <%= raise \"no\" %>\n")
      expect { Task.configure { |c| c.load_file(bad, environment: "test") } }
        .to raise_error(ArgumentError, "#{bad}: its ERB raised RuntimeError: no")
      expect { Task.configure { |c| c.load_file(File.join(dir, "none.yml")) } }
        .to raise_error(ArgumentError, /none\.yml: cannot read it: No such file or directory/)
      expect(Task.configuration.store).to be_nil
    end
  end

  describe "the default Cassandra store with no hosts given anywhere" do
    it "warns once, naming where it connects (Kernel#warn without Task.logger)" do
      Task.configure { |c| c.options = { keyspace: "my_tasks", port: 9043 } }
      said = quietly do
        default_adapter
        default_adapter
      end
      expect(said.lines).to eq(["task: no Cassandra hosts configured (Task.configure, config/task.yml or " \
                                "TASK_CASSANDRA_HOSTS): connecting to 127.0.0.1:9043, keyspace my_tasks\n"])
    end

    it "warns to Task.logger when one is set, and not at all once hosts are given" do
      Task.logger = logger
      said = quietly { default_adapter }
      expect(said).to eq("")
      expect(io.string.lines).to eq(["WARN task: no Cassandra hosts configured (Task.configure, config/task.yml or " \
                                     "TASK_CASSANDRA_HOSTS): connecting to 127.0.0.1:9042, keyspace tasks\n"])
      Task.instance_variable_set(:@configuration, described_class.new)
      io.truncate(0)
      ENV["TASK_CASSANDRA_HOSTS"] = "127.0.0.1"
      default_adapter
      ENV.delete("TASK_CASSANDRA_HOSTS")
      Task::DataInterface::Interface.new(hosts: ["127.0.0.1"])
      expect(io.string).to eq("")
    end
  end

  describe "the driver's own log lines", :cassandra do
    def driver_lines
      io.string.lines(chomp: true).grep(/\A[A-Z]+ task \[driver\]: /)
    end

    it "are picked by the driver's level (warnings and errors delivered at their level, the rest at debug)" do
      Task.logger = logger
      Task::Logging.driver_level = :warn
      expect(Task::Logging.driver_level).to eq(:warn)
      Task::Logging.deliver("debug", "driver", "DEBUG scylla::network: opened")
      Task::Logging.deliver("debug", "driver", "INFO scylla::cluster: node up")
      Task::Logging.deliver("debug", "driver", "WARN scylla::cluster: node down")
      Task::Logging.deliver("debug", "driver", "ERROR scylla::cluster: gone")
      Task::Logging.deliver("debug", "tasks.tasks@h:1", "not the driver's")
      expect(io.string.lines(chomp: true))
        .to eq(["WARN task [driver]: WARN scylla::cluster: node down", "ERROR task [driver]: ERROR scylla::cluster: gone",
                "DEBUG task [tasks.tasks@h:1]: not the driver's"])
      Task::Logging.driver_level = Logger::INFO
      expect(Task::Logging.driver_level).to eq(:info)
      expect { Task::Logging.driver_level = :loud }
        .to raise_error(ArgumentError, "driver_log_level must be :debug, :info, :warn or :error (or nil: all), got :loud")
    end

    it "of a real session: none below WARN at :warn, every one with :debug" do
      Task.logger = logger
      Task::Logging.driver_level = :warn
      # Connection settings of their own, so that each adapter opens a session of its own.
      cassandra_adapter(connect_timeout: 4.55).find(unique_list, "1")
      expect(driver_lines.grep(/\]: (DEBUG|INFO) /)).to eq([])
      Task::Logging.driver_level = :debug
      cassandra_adapter(connect_timeout: 4.45).find(unique_list, "1")
      expect(driver_lines.grep(/\]: DEBUG scylla::/)).not_to be_empty
    end
  end
end
