# frozen_string_literal: true

require "erb"
require "fileutils"
require "yaml"

module Task
  class << self
    # The configuration of the default store: what Task::Task.interface uses when no
    # Task::DataInterface::Interface.adapter_builder is set. See Task::Configuration.
    attr_reader :configuration

    # Sets up the default store, once, at boot (a Rails initializer, or the top of a
    # script), as Sidekiq.configure_server and GoodJob are set up:
    #
    #   Task.configure do |config|
    #     config.store = :cassandra                  # or :sqlite, :memory
    #     config.options = { hosts: ["10.0.0.5:9042"], keyspace: "tasks", consistency: :quorum }
    #     config.logger = Logger.new($stdout)        # Task.logger
    #     config.driver_log_level = :warn            # the Cassandra driver's own lines
    #     # or the section of a YAML file for an environment:
    #     config.load_file("config/task.yml", environment: "production")
    #   end
    #
    # The options are checked when the block returns, by the store's adapter (an unknown name
    # or a bad value raises ArgumentError naming it). Task::Task.interface is built anew on
    # its next use. Returns the configuration.
    def configure
      if block_given?
        before = configuration.send(:settings)
        begin
          yield configuration
          configuration.check
        rescue StandardError
          # A configuration that was refused leaves the one before in place.
          configuration.send(:restore, before)
          raise
        end
      end
      ::Task::Task.interface = nil
      configuration
    end

    # The adapter Task::Task.interface uses (an adapter_builder's when one is set, else the
    # configured store's): what rake tasks and the web page act on.
    def adapter
      ::Task::Task.interface.adapter
    end
  end

  # Where the default store comes from, strongest first:
  #
  # 1. +adapter_builder+: Task::DataInterface::Interface.adapter_builder = ->(options) { ... }
  #    (task_rb's way) replaces all of what follows.
  # 2. The options given to Interface.new (task_rb's hosts:, port:, keyspace:), over
  # 3. the store and options set by Task.configure or a YAML file (config/task.yml in Rails,
  #    read by the Railtie before the application's initializers; the later setting wins),
  # 4. and the environment, which fills what those leave unset: TASK_CASSANDRA_HOSTS (host or
  #    host:port, comma-separated) the hosts and TASK_CASSANDRA_KEYSPACE the keyspace of a
  #    Cassandra store, TASK_SQLITE_PATH the path of a SQLite store. With no store set,
  #    TASK_SQLITE_PATH picks SQLite (as it does for the command), else the store is Cassandra.
  # 5. The adapters' own defaults (Cassandra: 127.0.0.1:9042, keyspace "tasks"). A process
  #    that connects to Cassandra with no hosts given anywhere logs one warning naming where
  #    (to Task.logger, or Kernel#warn without one).
  #
  # A YAML file has a section per environment, each the store and its options; ERB is run
  # first (for ENV lookups), and aliases and merge keys are read, as in config/database.yml:
  #
  #   default: &default
  #     store: cassandra
  #     hosts: <%= ENV.fetch("TASK_CASSANDRA_HOSTS", "127.0.0.1") %>
  #     keyspace: myapp_tasks
  #   production:
  #     <<: *default
  #     consistency: local_quorum
  #   development:
  #     store: sqlite
  #     path: db/tasks_development.sqlite3   # relative to the application's root
  #   test:
  #     store: memory
  #
  # A name the store's adapter does not take, a store that does not exist, or a value of the
  # wrong type is an ArgumentError naming the file, the environment and the key.
  class Configuration
    # The environment variables read for each option of a store.
    ENVIRONMENT = {
      cassandra: { hosts: "TASK_CASSANDRA_HOSTS", keyspace: "TASK_CASSANDRA_KEYSPACE" },
      sqlite: { path: "TASK_SQLITE_PATH" }
    }.freeze

    # The store set by configure or a file (a Symbol: :cassandra, :sqlite, :memory), or nil.
    attr_reader :store

    # The options set by configure or a file (Symbol keys), for the store's adapter's new.
    attr_reader :options

    # Where the store and options were last set: "Task.configure", or the file and environment.
    attr_reader :source

    def initialize
      @store = nil
      @options = {}.freeze
      @source = "Task.configure"
      @warned = false
      @lock = Mutex.new
    end

    # The store by name (:cassandra, :sqlite, :memory, or a String). Changing it forgets the
    # options given for the previous one.
    def store=(name)
      picked = store_named(name, "Task.configure: store")
      @options = {}.freeze if @store && picked != @store
      @store = picked
      @source = "Task.configure"
    end

    # The store's options (Symbol or String keys), as its adapter's new takes them; they
    # replace those set before.
    def options=(options)
      raise ArgumentError, "Task.configure: options must be a Hash, got #{options.inspect}" unless options.is_a?(Hash)

      @options = symbolized(options, "Task.configure: options").freeze
      @source = "Task.configure"
    end

    # Task.logger.
    def logger
      ::Task.logger
    end

    def logger=(logger)
      ::Task.logger = logger
    end

    # Which of the Cassandra driver's own lines are logged: :debug, :info, :warn or :error
    # and above, nil for all (Task::Logging.driver_level).
    def driver_log_level
      Logging.driver_level
    end

    def driver_log_level=(level)
      Logging.driver_level = level
    end

    # Reads the +environment+ section of the YAML file at +path+ (after ERB): its store and
    # options, over those set so far. A missing section sets nothing. A relative SQLite path
    # in it is taken from +root+ (the application's root) when given. Raises ArgumentError
    # naming the file for a file that cannot be read or used.
    def load_file(path, environment: default_environment, root: nil)
      path = path.to_s
      environment = environment.to_s
      section = read_section(path, environment)
      return self if section.nil?

      where = "#{path} (#{environment})"
      unless section.is_a?(Hash)
        raise ArgumentError, "#{where}: expected a mapping of store: and its options, got #{describe(section)}"
      end

      settings = symbolized(section, where)
      named = settings.key?(:store) ? store_named(settings.delete(:store), "#{where}: store") : nil
      if settings[:path].is_a?(String) && root && !settings[:path].empty?
        settings[:path] = File.expand_path(settings[:path], root.to_s)
      end
      check_options(named || resolved_store, settings, where)
      @options = {}.freeze if named && @store && named != @store
      @store = named if named
      @options = @options.merge(settings).freeze
      @source = where
      self
    end

    # Checks the store and options set so far with the store's adapter (Task.configure calls
    # it); raises ArgumentError naming where they were set.
    def check
      check_options(resolved_store, @options, @source)
      self
    end

    # The store the default builder uses: the one set, else SQLite when TASK_SQLITE_PATH is
    # set, else Cassandra.
    def resolved_store
      return @store if @store

      env_value(ENVIRONMENT[:sqlite][:path]) ? :sqlite : :cassandra
    end

    # The options the default builder passes to the store's adapter: those set, with the
    # environment filling what they leave unset.
    def resolved_options
      settings = @options.dup
      ENVIRONMENT.fetch(resolved_store, {}).each do |option, variable|
        next if settings.key?(option)

        value = env_value(variable)
        next if value.nil?

        settings[option] = option == :hosts ? value.split(",").map(&:strip).reject(&:empty?) : value
      end
      settings
    end

    # A new adapter of the configured store, with the call's +options+ over the resolved
    # ones, whatever adapter_builder says (the default builder builds the same). Connections
    # are shared with every adapter of the same settings.
    def build_adapter(options = {})
      given = symbolized(options || {}, "build_adapter").reject { |k, _| k == :adapter }
      store = resolved_store
      settings = resolved_options.merge(given)
      # The SQLite file's directory (db/ of an application without Active Record) is made.
      if store == :sqlite && (settings[:path].is_a?(String) || settings[:path].respond_to?(:to_path))
        FileUtils.mkdir_p(File.dirname(settings[:path].to_s))
      end
      adapter = begin
        stores.fetch(store).new(**settings)
      rescue ArgumentError, TypeError => e
        raise e.class, "#{@source}: #{e.message}"
      end
      default_adapter_built(adapter, settings) if store == :cassandra
      adapter
    end

    # The names of the stores there are (the adapter classes of the extension).
    def store_names
      stores.keys
    end

    def inspect
      "#<#{self.class.name} store=#{resolved_store} source=#{@source}>"
    end

    private

    def settings
      [@store, @options, @source]
    end

    def restore(settings)
      @store, @options, @source = settings
    end

    # Called by the default builder (ext/task_native/src/interface.rs) with Interface.new's
    # options: the Cassandra options to build with (resolved ones, the call's over them), or
    # nil when the configured store is another.
    def default_cassandra_options(given)
      return nil unless resolved_store == :cassandra

      resolved_options.merge(given.transform_keys { |k| k.is_a?(String) ? k.to_sym : k })
    end

    # Called by the default builder with the Cassandra adapter it built and its options: the
    # one warning of a process that connects with no hosts given anywhere.
    def default_adapter_built(adapter, settings)
      return nil if settings.key?(:hosts)
      return nil if @lock.synchronize { @warned.tap { @warned = true } }

      o = adapter.options
      where = o[:hosts].map { |h| h.include?(":") ? h : "#{h}:#{o[:port]}" }.join(",")
      text = "task: no Cassandra hosts configured (Task.configure, config/task.yml or TASK_CASSANDRA_HOSTS): " \
             "connecting to #{where}, keyspace #{o[:keyspace]}"
      if ::Task.logger
        ::Task.logger.warn(text)
      else
        Kernel.warn(text)
      end
      nil
    end

    def stores
      Signatures.adapter_classes.to_h do |klass|
        [klass.name.split("::").last.delete_suffix("Adapter").downcase.to_sym, klass]
      end
    end

    def store_named(name, where)
      key = name.is_a?(String) || name.is_a?(Symbol) ? name.to_s.downcase.to_sym : nil
      return key if key && stores.key?(key)

      raise ArgumentError, "#{where}: #{name.inspect} is not a store (one of #{store_names.join(", ")})"
    end

    # The store's adapter checks the options (nothing connects; a SQLite file is not opened:
    # its path is checked when the adapter is built).
    def check_options(store, settings, where)
      if settings.key?(:logger)
        raise ArgumentError, "#{where}: logger is not a store option here: set Task.logger (config.logger)"
      end

      klass = stores.fetch(store)
      path = settings[:path]
      unless path.nil? || ((path.is_a?(String) || path.respond_to?(:to_path)) && !path.to_s.empty?)
        raise ArgumentError, "#{where}: path must be a non-empty String, got #{path.inspect}"
      end
      begin
        klass.new(**settings.reject { |k, _| k == :path })
        # A store that took all but path: does it take path? (Its error names it if not.)
        klass.new(**settings) if settings.key?(:path)
      rescue ArgumentError, TypeError => e
        # A store that opens a file on new (SQLite) is given no path here: the file is opened
        # when the adapter is built.
        raise e.class, "#{where}: #{e.message}" unless e.message.end_with?("path: is required")
      end
      nil
    end

    def symbolized(hash, where)
      hash.to_h do |k, v|
        raise ArgumentError, "#{where}: option names must be strings, got #{k.inspect}" unless k.is_a?(String) || k.is_a?(Symbol)

        [k.to_sym, v]
      end
    end

    def read_section(path, environment)
      text = begin
        File.read(path, mode: "r:UTF-8")
      rescue SystemCallError, IOError => e
        raise ArgumentError, "#{path}: cannot read it: #{e.message.sub(/ @ .*\z/m, "")}"
      end
      raise ArgumentError, "#{path}: not UTF-8 text" unless text.valid_encoding?

      loaded = parse(path, evaluate(path, text))
      return nil if loaded.nil?
      unless loaded.is_a?(Hash)
        raise ArgumentError, "#{path}: expected a mapping of environments (#{environment}: ...), got #{describe(loaded)}"
      end

      loaded[environment] || loaded[environment.to_sym]
    end

    def evaluate(path, text)
      template = ERB.new(text)
      template.filename = path
      template.result
    rescue StandardError, ScriptError => e
      raise ArgumentError, "#{path}: its ERB raised #{e.class}: #{e.message}"
    end

    def parse(path, text)
      YAML.safe_load(text, permitted_classes: [Symbol], aliases: true, filename: path)
    rescue Psych::SyntaxError => e
      raise ArgumentError, "#{path}: line #{e.line} column #{e.column}: #{[e.problem, e.context].compact.join(" ")}"
    rescue Psych::DisallowedClass => e
      raise ArgumentError, "#{path}: #{e.message} (only strings, numbers, booleans, lists and mappings)"
    rescue Psych::Exception => e
      raise ArgumentError, "#{path}: #{e.message}"
    end

    def describe(value)
      case value
      when Array then "a list"
      when String then "a string"
      else value.class.name
      end
    end

    def default_environment
      ENV["RAILS_ENV"] || ENV["RACK_ENV"] || "development"
    end

    def env_value(name)
      value = ENV.fetch(name, nil)
      value.nil? || value.strip.empty? ? nil : value
    end
  end

  @configuration = Configuration.new
end
