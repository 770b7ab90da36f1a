# frozen_string_literal: true

require_relative "task/version"
require_relative "task/error"
# The native extension: Task::Task, Task::DataInterface::Interface and the adapters.
begin
  # A precompiled gem carries the extension under lib/task/<Ruby major.minor>/; a source
  # install or a checkout has it in lib/task/.
  abi = RUBY_VERSION[/\A\d+\.\d+/]
  begin
    require "task/#{abi}/task_native"
  rescue LoadError => e
    raise unless e.path.nil? || e.path.end_with?("task/#{abi}/task_native")

    require "task/task_native"
  end
rescue LoadError => e
  raise unless e.path.nil? || e.path.end_with?("task/task_native")

  # A checkout (a Bundler path: source, or a git clone) whose extension was never built.
  raise LoadError, "task: its native extension (task/task_native) is not built. In the gem's " \
                   "directory (#{File.expand_path("..", __dir__)}) run `rake compile` (Rust 1.88+, " \
                   "libclang and Ruby's headers needed; see README.md). Bundler builds it for git: " \
                   "sources but not for path: ones. (#{e.message})"
end
require_relative "task/signatures"
require_relative "task/task"
require_relative "task/claims"
require_relative "task/lists"
require_relative "task/json_form"
require_relative "task/instrumentation"
require_relative "task/logging"
require_relative "task/adapters"
require_relative "task/configuration"
require_relative "task/generator"
require_relative "task/tasks/composite_task"

module Task
  # The job mixins, loaded on first use (`include Task::Job` in a job class): a process that
  # runs no jobs never loads them. `require "task/job"` still works, before or after this file.
  autoload :Job, File.expand_path("task/job", __dir__)
  autoload :Recovery, File.expand_path("task/recovery", __dir__)
end

# In a Rails application (Bundler.require runs after Rails is loaded): config/task.yml, the
# logger, the rake tasks and the generators.
require_relative "task/railtie" if defined?(Rails::Railtie) && !defined?(Task::Railtie)
