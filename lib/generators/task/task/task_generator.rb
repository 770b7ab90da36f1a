# frozen_string_literal: true

require "erb"
require "rails/generators"
require "rails/generators/named_base"

module Task
  # `rails generate task:task PaintBoard board color`: app/tasks/paint_board_task.rb, a class
  # PaintBoardTask with `include Task::Task` and a data_attr_reader for each argument, and its
  # test: spec/tasks/paint_board_task_spec.rb when the application has a spec/ directory,
  # else test/tasks/paint_board_task_test.rb (Minitest). The test uses the test helpers
  # (task/testing), and requires them itself when the application's test helper does not
  # (see `rails generate task:install`). app/tasks is autoloaded as every directory of app/ is.
  class TaskGenerator < ::Rails::Generators::NamedBase
    CLASS = <<~'TEMPLATE'
      # A unit of work kept by the task gem: saved to the store (<%= class_name %>Task.create), handed to a
      # job as task.as_json, rebuilt there with Task::Task.from_hash, executed, then completed.
      class <%= class_name %>Task
        include Task::Task

      <% attributes.each do |attribute| -%>
        data_attr_reader :<%= attribute.name %>
      <% end -%>

        def execute(opts = {})
          # The work, from the task's data<%= attributes.empty? ? "" : " (#{attributes.map(&:name).join(", ")})" %>.
        end
      end
    TEMPLATE

    TEST = <<~'TEMPLATE'
      require "test_helper"
      <% unless testing_wired?("test/test_helper.rb", "Task::Testing::Minitest") -%>
      require "task/testing"
      <% end -%>

      class <%= class_name %>TaskTest < ActiveSupport::TestCase
      <% unless testing_wired?("test/test_helper.rb", "Task::Testing::Minitest") -%>
        # A fresh memory store for each test, and assert_task_saved / assert_task_completed
        # (or include it in ActiveSupport::TestCase in test_helper.rb, as task:install does).
        include Task::Testing::Minitest

      <% end -%>
        def build_task
          <%= class_name %>Task.build(task_list: "<%= task_list %>"<% attributes.each do |a| %>, <%= a.name %>: <%= sample(a).inspect %><% end %>)
        end

        test "keeps its data, and comes back from its JSON form" do
          task = build_task
      <% attributes.each do |a| -%>
          assert_equal <%= sample(a).inspect %>, task.<%= a.name %>
      <% end -%>
          assert_equal task.attributes, Task::Task.from_json(task.to_json).attributes
        end

        test "is saved, and completed" do
          task = build_task
          task.save
          assert_task_saved "<%= task_list %>", <%= class_name %>Task, id: task.id<%= data_argument %>
          task.complete
          assert_task_completed task
        end

        # test "executes" do
        #   build_task.execute
        # end
      end
    TEMPLATE

    SPEC = <<~'TEMPLATE'
      require "<%= spec_helper %>"
      <% unless testing_wired?("spec/#{spec_helper}.rb", "task/testing") -%>
      # A fresh memory store for each example, and have_saved_task / be_completed_task (or in
      # rails_helper.rb, as task:install does).
      require "task/testing"
      <% end -%>

      RSpec.describe <%= class_name %>Task do
        def build_task
          described_class.build(task_list: "<%= task_list %>"<% attributes.each do |a| %>, <%= a.name %>: <%= sample(a).inspect %><% end %>)
        end

        it "keeps its data, and comes back from its JSON form" do
          task = build_task
      <% attributes.each do |a| -%>
          expect(task.<%= a.name %>).to eq(<%= sample(a).inspect %>)
      <% end -%>
          expect(Task::Task.from_json(task.to_json).attributes).to eq(task.attributes)
        end

        it "is saved, and completed" do
          task = build_task
          task.save
          expect("<%= task_list %>").to have_saved_task(described_class, id: task.id<%= data_argument %>)
          task.complete
          expect(task).to be_completed_task
        end

        # it "executes" do
        #   build_task.execute
        # end
      end
    TEMPLATE

    argument :attributes, type: :array, default: [], banner: "data_attribute data_attribute"

    desc "Writes app/tasks/NAME_task.rb (include Task::Task, a data_attr_reader per argument) and its spec or test."

    def task_file
      create_file File.join("app/tasks", class_path, "#{file_name}_task.rb"), render(CLASS)
    end

    def test_file
      if File.directory?(File.join(destination_root, "spec"))
        create_file File.join("spec/tasks", class_path, "#{file_name}_task_spec.rb"), render(SPEC)
      else
        create_file File.join("test/tasks", class_path, "#{file_name}_task_test.rb"), render(TEST)
      end
    end

    private

    def render(text)
      ERB.new(text, trim_mode: "-").result(binding)
    end

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

    # ", data: { board: "board 1" }" for the assertions on a saved task, or "".
    def data_argument
      return "" if attributes.empty?

      ", data: { #{attributes.map { |a| "#{a.name}: #{sample(a).inspect}" }.join(", ")} }"
    end

    # Whether the application's +helper+ (relative) already wires the test helpers (mentions
    # +mark+), as `rails generate task:install` does.
    def testing_wired?(helper, mark)
      file = File.join(destination_root, helper)
      File.file?(file) && File.read(file).include?(mark)
    end

    def spec_helper
      File.exist?(File.join(destination_root, "spec", "rails_helper.rb")) ? "rails_helper" : "spec_helper"
    end
  end
end
