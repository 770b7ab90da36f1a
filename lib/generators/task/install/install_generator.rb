# frozen_string_literal: true

require "rails/generators"

module Task
  # `rails generate task:install`: config/task.yml (the store of each environment) and a
  # commented mount of the web page in config/routes.rb. No initializer is needed: the
  # Railtie reads the file; write config/initializers/task.rb with Task.configure only for
  # what a file cannot hold (a logger of your own).
  class InstallGenerator < ::Rails::Generators::Base
    source_root File.expand_path("templates", __dir__)

    desc "Writes config/task.yml (development: SQLite under db/, test: memory, production: " \
         "Cassandra from TASK_CASSANDRA_HOSTS) and a commented mount of Task::Web in config/routes.rb."

    def config_file
      template "task.yml.tt", "config/task.yml"
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

    # The application's name as a keyspace name (letters, digits, underscores).
    def keyspace
      name = Rails.application.class.module_parent_name.to_s.underscore.gsub(/[^a-z0-9_]/, "_")
      "#{name.empty? ? "app" : name}_tasks"
    end
  end
end
