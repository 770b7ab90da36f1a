# frozen_string_literal: true

require "rails/generators"
require "rails/generators/named_base"

module Task
  # `rails generate task:task PaintBoard board color`: app/tasks/paint_board_task.rb, a class
  # PaintBoardTask with `include Task::Task` and a data_attr_reader for each argument, and its
  # test: spec/tasks/paint_board_task_spec.rb when the application has a spec/ directory,
  # else test/tasks/paint_board_task_test.rb (Minitest). app/tasks is autoloaded as every
  # directory of app/ is.
  class TaskGenerator < ::Rails::Generators::NamedBase
    source_root File.expand_path("templates", __dir__)

    argument :attributes, type: :array, default: [], banner: "data_attribute data_attribute"

    desc "Writes app/tasks/NAME_task.rb (include Task::Task, a data_attr_reader per argument) and its spec or test."

    def task_file
      template "task.rb.tt", File.join("app/tasks", class_path, "#{file_name}_task.rb")
    end

    def test_file
      if File.directory?(File.join(destination_root, "spec"))
        template "task_spec.rb.tt", File.join("spec/tasks", class_path, "#{file_name}_task_spec.rb")
      else
        template "task_test.rb.tt", File.join("test/tasks", class_path, "#{file_name}_task_test.rb")
      end
    end

    private

    # PaintBoardTask from PaintBoard or PaintBoardTask.
    def file_name
      @_file_name ||= super.sub(/_task\z/i, "")
    end

    def task_list
      [*class_path, file_name].join("_")
    end

    # The value a test gives an attribute.
    def sample(attribute)
      case attribute.type
      when :integer then 1
      when :float, :decimal then 1.5
      when :boolean then true
      else "#{attribute.name} 1"
      end
    end

    def spec_helper
      File.exist?(File.join(destination_root, "spec", "rails_helper.rb")) ? "rails_helper" : "spec_helper"
    end
  end
end
