# frozen_string_literal: true

require "rails/railtie"

module Task
  # Loaded by `require "task"` when Rails is (Bundler.require in config/application.rb):
  #
  # * reads config/task.yml, the section of Rails.env (see Task::Configuration; a missing
  #   file is fine: the environment and the defaults apply), before the application's own
  #   initializers, so that a Task.configure there has the last word;
  # * sets Task.logger to Rails.logger unless the application set one, with the Cassandra
  #   driver's own lines from WARN up (config.task.driver_log_level = :debug for all of them);
  # * makes Task::Web loadable by name (for `mount Task::Web.new, at: "/tasks"`);
  # * once ActiveJob loads, adds the serializer of tasks (task/active_job), so that
  #   `SomeJob.perform_later(task)` passes the task as its JSON form with no require;
  # * adds the rake tasks task:schema:create, task:schema:tune and task:doctor, on the store
  #   the configuration gives (Task.adapter).
  #
  # Forks need nothing from here: the extension gives a forked child (Puma's workers, Spring,
  # Resque) a runtime and connections of its own on first use and leaves the parent's alone,
  # and SQLite adapters close their idle connections before a fork.
  #
  # Options (config/application.rb or config/environments/*.rb):
  #   config.task.config_file = "config/task.yml"   # relative to Rails.root
  #   config.task.driver_log_level = :warn          # :debug, :info, :warn, :error; nil: all
  class Railtie < ::Rails::Railtie
    config.task = ActiveSupport::OrderedOptions.new
    config.task.config_file = "config/task.yml"
    config.task.driver_log_level = :warn

    initializer "task.configuration", before: :load_config_initializers do |app|
      Railtie.configure(app)
    end

    initializer "task.active_job" do
      ActiveSupport.on_load(:active_job) { require "task/active_job" }
    end

    rake_tasks do
      namespace :task do
        namespace :schema do
          desc "Create the task store's keyspace and tables when missing (REPLICATION_FACTOR=N for Cassandra)"
          task create: :environment do
            status = Railtie.create_schema(::Task.adapter)
            exit(status) unless status.zero?
          end

          desc "Give the task store's existing tables the options for lists that churn (ALTER TABLE)"
          task tune: :environment do
            status = Railtie.tune_schema(::Task.adapter)
            exit(status) unless status.zero?
          end
        end

        desc "Check the task store: hosts, server, clock, keyspace, tables and a round trip"
        task doctor: :environment do
          require "task/cli"
          status = ::Task::CLI.start(["doctor"], adapter: ::Task.adapter)
          exit(status) unless status.zero?
        end
      end
    end

    class << self
      # What the initializer does, for +app+.
      def configure(app)
        options = app.config.task
        file = app.root.join(options.config_file.to_s)
        ::Task.configure { |c| c.load_file(file, environment: ::Rails.env, root: app.root) } if file.file?
        ::Task::Logging.driver_level = options.driver_log_level
        ::Task.logger = ::Rails.logger if ::Task.logger.nil? && ::Rails.logger
        ::Task.autoload(:Web, "task/web") unless ::Task.const_defined?(:Web, false)
      end

      # task:schema:create: the adapter's create_schema, saying what it made. Returns the
      # exit status.
      def create_schema(adapter, out: $stdout, err: $stderr)
        out.puts("task:schema:create: #{adapter.inspect}")
        unless adapter.respond_to?(:create_schema)
          out.puts("  this store has no schema to create")
          return 0
        end
        before = tables(adapter)
        factor = ENV.fetch("REPLICATION_FACTOR", "").strip
        if factor.empty?
          adapter.create_schema
        else
          adapter.create_schema(replication_factor: Integer(factor, exception: false) || factor)
        end
        report_created(before, tables(adapter), out)
        0
      rescue ::Task::Error, ArgumentError => e
        err.puts("task:schema:create: #{e.class}: #{e.message}")
        1
      end

      # task:schema:tune: the adapter's tune_table(run: true), printing each statement it ran.
      def tune_schema(adapter, out: $stdout, err: $stderr)
        out.puts("task:schema:tune: #{adapter.inspect}")
        unless adapter.respond_to?(:tune_table)
          out.puts("  this store has no table options to tune")
          return 0
        end
        ran = adapter.tune_table(run: true)
        out.puts("  the tables already have the options for churn") if ran.empty?
        ran.each { |statement| out.puts("  ran: #{statement}") }
        0
      rescue ::Task::Error, ArgumentError => e
        err.puts("task:schema:tune: #{e.class}: #{e.message}")
        1
      end

      private

      # { "keyspace NAME" => present?, "table NAME" => present? } when the store describes
      # them, else nil.
      def tables(adapter)
        return nil unless adapter.respond_to?(:describe)

        described = adapter.describe
        return nil unless described.key?(:tables)

        keyspace = adapter.options[:keyspace]
        { "keyspace #{keyspace}" => !described[:replication].nil? }
          .merge(described[:tables].to_h { |name, table| ["table #{keyspace}.#{name}", !table.nil?] })
      end

      def report_created(before, after, out)
        if after.nil?
          out.puts("  tables present (made when missing)")
          return
        end
        after.each do |what, present|
          state = if !present then "missing"
                  elsif before && before[what] then "already there"
                  else "created"
                  end
          out.puts("  #{what}: #{state}")
        end
      end
    end
  end
end

# Loaded by lib/task.rb; required on its own, it loads the gem.
require "task" unless defined?(Task::Configuration)
