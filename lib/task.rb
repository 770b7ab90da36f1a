# frozen_string_literal: true

require_relative "task/version"
require_relative "task/error"
# The native extension: Task::Task, Task::DataInterface::Interface and the adapters.
require "task/task_native"
require_relative "task/task"
require_relative "task/claims"
require_relative "task/lists"
require_relative "task/generator"
require_relative "task/tasks/composite_task"
