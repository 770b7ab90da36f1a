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
          desc "Create the task store's keyspace and tables when missing " \
               "(REPLICATION_FACTOR=N, default 1, or REPLICATION=dc1:3,dc2:3 for Cassandra)"
          task create: :environment do
            Railtie.command("schema", "create", *Railtie.replication_options)
          end

          desc "Give the task store's existing tables the options for lists that churn (ALTER TABLE)"
          task tune: :environment do
            Railtie.command("schema", "tune", "--run")
          end
        end

        desc "Check the task store: hosts, server, clock, keyspace, tables and a round trip"
        task doctor: :environment do
          Railtie.command("doctor")
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

      # The rake tasks: the taskrb command's subcommand on the configured store (Task.adapter);
      # a status other than 0 ends rake with it.
      def command(*argv)
        require "task/cli"
        status = ::Task::CLI.start(argv, adapter: ::Task.adapter)
        exit(status) unless status.zero?
      end

      # taskrb schema create's replication options from the environment: REPLICATION
      # (dc1:3,dc2:3), else REPLICATION_FACTOR (1 unless set).
      def replication_options
        by_dc = ENV.fetch("REPLICATION", "").strip
        return ["--replication", by_dc] unless by_dc.empty?

        factor = ENV.fetch("REPLICATION_FACTOR", "").strip
        ["--replication-factor", factor.empty? ? "1" : factor]
      end
    end
  end
end

# Loaded by lib/task.rb; required on its own, it loads the gem.
require "task" unless defined?(Task::Configuration)
