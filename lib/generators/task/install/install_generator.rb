# frozen_string_literal: true

require "erb"
require "rails/generators"

module Task
  # `rails generate task:install`: config/task.yml (the store of each environment), a
  # commented mount of the web page in config/routes.rb, and the test helpers (task/testing)
  # wired into the application's test helper: test/test_helper.rb (require, and
  # `include Task::Testing::Minitest` in ActiveSupport::TestCase) and spec/rails_helper.rb
  # (require), whichever it has. No initializer is needed: the Railtie reads the file; write
  # config/initializers/task.rb with Task.configure only for what a file cannot hold (a
  # logger of your own). Running it again changes nothing already done.
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
         "Cassandra from TASK_CASSANDRA_HOSTS), a commented mount of Task::Web in config/routes.rb, " \
         "and require \"task/testing\" in test/test_helper.rb or spec/rails_helper.rb."

    def config_file
      create_file "config/task.yml", render(CONFIG)
    end

    def web_page_route
      routes = File.join(destination_root, "config", "routes.rb")
      return if File.file?(routes) && File.read(routes).include?("Task::Web")

      route <<~RUBY.chomp
        # The task gem's web page (Task::Web): the lists, their stale and dead tasks, and the
        # repairs. It has no login of its own: mount it behind the application's own
        # authentication, e.g. with Devise: authenticate :user, ->(u) { u.admin? } do ... end
        # (read_only: true shows everything and changes nothing).
        # mount Task::Web.new(secret: Rails.application.key_generator.generate_key("task web")), at: "/tasks"
      RUBY
    end

    # Minitest: require "task/testing" after rails/test_help, and the assertions and the
    # fresh store in every ActiveSupport::TestCase.
    def minitest_helper
      helper = "test/test_helper.rb"
      text = helper_text(helper)
      return if text.nil? || text.include?("task/testing")

      after = first_line(text, %r{^require ["']rails/test_help["'].*\n}, %r{^require.*config/environment\b.*\n})
      test_case = first_line(text, /^class ActiveSupport::TestCase\b.*\n/)
      return testing_note(helper) unless after && test_case

      inject_into_file helper, "require \"task/testing\"\n", after: after
      inject_into_file helper, "  # The task gem's test helpers: a fresh memory store for each test, and\n" \
                               "  # assert_task_saved / refute_task_saved / assert_task_completed.\n" \
                               "  include Task::Testing::Minitest\n\n", after: test_case
    end

    # RSpec: require "task/testing" once RSpec and the application are loaded; it includes
    # the matchers and the fresh store in every example group.
    def rspec_helper
      helper = "spec/rails_helper.rb"
      text = helper_text(helper)
      return if text.nil? || text.include?("task/testing")

      after = first_line(text, /^# Add additional requires below this line.*\n/, %r{^require ["']rspec/rails["'].*\n},
                         %r{^require.*config/environment\b.*\n})
      return testing_note(helper) unless after

      inject_into_file helper, "# The task gem's test helpers: a fresh memory store for each example, and\n" \
                               "# have_saved_task / be_completed_task matchers.\nrequire \"task/testing\"\n", after: after
    end

    # Neither helper: say how to wire them.
    def test_helpers_note
      return if %w[test/test_helper.rb spec/rails_helper.rb].any? { |h| File.file?(File.join(destination_root, h)) }

      testing_note("test/test_helper.rb or spec/rails_helper.rb")
    end

    private

    def helper_text(relative)
      file = File.join(destination_root, relative)
      File.file?(file) ? File.read(file) : nil
    end

    # The first line of +text+ matching one of +patterns+ (tried in order), or nil.
    def first_line(text, *patterns)
      patterns.each do |pattern|
        line = text[pattern]
        return line if line
      end
      nil
    end

    def testing_note(where)
      say "For the test helpers, add to #{where}: require \"task/testing\" (after the application is loaded), " \
          "and for Minitest `include Task::Testing::Minitest` in the test class.", :yellow
      nil
    end

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
