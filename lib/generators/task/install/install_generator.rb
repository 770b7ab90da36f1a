# frozen_string_literal: true

require "erb"
require "rails/generators"

module Task
  # `rails generate task:install`: config/task.yml (the store of each environment) and a
  # commented mount of the web page in config/routes.rb. No initializer is needed: the
  # Railtie reads the file; write config/initializers/task.rb with Task.configure only for
  # what a file cannot hold (a logger of your own).
  class InstallGenerator < ::Rails::Generators::Base
    # config/task.yml (ERB for the generator; <%%= is ERB left in the file).
    CONFIG = <<~'TEMPLATE'
      # The task gem's store for each environment, read at boot by Task::Railtie (see
      # Task::Configuration). `store:` is cassandra, sqlite or memory; the other keys are that
      # store's adapter options (an unknown one stops the boot, naming it). ERB runs first. What
      # a section leaves unset comes from the environment: TASK_CASSANDRA_HOSTS (host or
      # host:port, comma-separated), TASK_CASSANDRA_KEYSPACE, TASK_SQLITE_PATH. Task.configure in
      # an initializer overrides this file.

      development:
        store: sqlite
        path: db/tasks_development.sqlite3 # relative to the application's root; made on first use

      test:
        store: memory # in-process: nothing to run, empty at each boot

      production:
        store: cassandra
        # hosts: from TASK_CASSANDRA_HOSTS (without it, 127.0.0.1:9042, with a warning in the log)
        keyspace: <%%= ENV.fetch("TASK_CASSANDRA_KEYSPACE", "<%= keyspace %>") %>
        # consistency: local_quorum
        # username: <%%= ENV["TASK_CASSANDRA_USERNAME"] %>
        # password: <%%= ENV["TASK_CASSANDRA_PASSWORD"] %>
        # Create the keyspace and tables once: bin/rails task:schema:create (REPLICATION_FACTOR=3)
    TEMPLATE

    desc "Writes config/task.yml (development: SQLite under db/, test: memory, production: " \
         "Cassandra from TASK_CASSANDRA_HOSTS) and a commented mount of Task::Web in config/routes.rb."

    def config_file
      create_file "config/task.yml", render(CONFIG)
    end

    def web_page_route
      route <<~RUBY.chomp
        # The task gem's web page (Task::Web): the lists, their stale and dead tasks, and the
        # repairs. It has no login of its own: mount it behind the application's own
        # authentication, e.g. with Devise: authenticate :user, ->(u) { u.admin? } do ... end
        # (read_only: true shows everything and changes nothing).
        # mount Task::Web.new(secret: Rails.application.key_generator.generate_key("task web")), at: "/tasks"
      RUBY
    end

    private

    def render(text)
      ERB.new(text, trim_mode: "-").result(binding)
    end

    # The application's name as a keyspace name (letters, digits, underscores).
    def keyspace
      name = Rails.application.class.module_parent_name.to_s.underscore.gsub(/[^a-z0-9_]/, "_")
      "#{name.empty? ? "app" : name}_tasks"
    end
  end
end
