# frozen_string_literal: true

require "spec_helper"
require "open3"
require "rbconfig"
require "tmpdir"

# require "task/testing" in an application's own suite: RSpec (hooked in on require) and
# Minitest (a module to include). Each suite is a file of its own run in a process of its
# own: hooks that switch the default store in this suite's process would fight its own.
RSpec.describe "task/testing" do
  let(:lib) { File.expand_path("../lib", __dir__) }

  around do |example|
    Dir.mktmpdir("task-testing") do |dir|
      @dir = dir
      example.run
    end
  end

  def run_ruby(name, code, *args)
    path = File.join(@dir, name)
    File.write(path, code)
    Open3.capture2e(RbConfig.ruby, "-w", "-I", lib, *args, path, chdir: @dir)
  end

  def run_rspec(name, code)
    File.write(File.join(@dir, name), code)
    Open3.capture2e(RbConfig.ruby, "-w", "-I", lib, "-e", 'require "rspec/core"; exit RSpec::Core::Runner.run(ARGV)',
                    name, "--no-color", "--order", "defined", chdir: @dir)
  end

  TASK_CLASS = <<~RUBY
    class FetchFile
      include Task::Task
      data_attr_reader :filename
    end
  RUBY

  describe "with RSpec" do
    it "gives each example a fresh memory store, puts back the one before, and its matchers pass" do
      out, status = run_rspec("uploads_spec.rb", <<~RUBY)
        require "task/testing"
        #{TASK_CLASS}
        BEFORE = Task::DataInterface::Interface.new(adapter: Task::DataInterface::MemoryAdapter.new)
        Task::Task.interface = BEFORE
        RSpec.configure { |c| c.include Task::Testing::RSpec } # as well as the hook on require: once
        RSpec.describe "uploads" do
          after(:all) { puts "restored: \#{Task::Task.interface.equal?(BEFORE)}" }

          it "saves" do
            expect(Task::Task.interface).not_to equal(BEFORE)
            expect(Task::Testing.store).to be_a(Task::DataInterface::MemoryAdapter)
            task = FetchFile.create(task_list: "uploads", id: "u1", filename: "u1.txt")
            expect("uploads").to have_saved_task
            expect("uploads").to have_saved_task(FetchFile, id: "u1", data: { filename: "u1.txt" })
            expect("uploads").not_to have_saved_task(FetchFile, id: "u2")
            expect(task).not_to be_completed_task
            task.complete
            expect(task).to be_completed_task
            expect(%w[uploads u1]).to be_completed_task
          end

          it "starts empty, and Interface.new without an adapter gets the same store" do
            expect("uploads").not_to have_saved_task
            FetchFile.create(task_list: "uploads", id: "u2")
            expect(Task::DataInterface::Interface.new.find("uploads", "u2")).to be_a(FetchFile)
          end

          context "nested" do
            it "starts empty too" do
              expect(Task::Task.all("uploads").to_a).to eq([])
            end
          end
        end
      RUBY
      expect(status.success?).to be(true), out
      expect(out).to include("3 examples, 0 failures", "restored: true")
      expect(out.lines.grep(/warning:/).grep(/#{Regexp.escape(lib)}/)).to eq([])
    end

    it "fails an example whose task is not saved, or not completed, saying what the list holds" do
      out, status = run_rspec("failing_spec.rb", <<~RUBY)
        require "task/testing"
        #{TASK_CLASS}
        RSpec.describe "uploads" do
          it "wants another id" do
            FetchFile.create(task_list: "uploads", id: "u1", filename: "u1.txt")
            expect("uploads").to have_saved_task(FetchFile, id: "u9")
          end

          it "wants none" do
            FetchFile.create(task_list: "uploads", id: "u1", filename: "u1.txt")
            expect("uploads").not_to have_saved_task(id: "u1")
          end

          it "wants it completed" do
            task = FetchFile.create(task_list: "uploads", id: "u1")
            task.claim(for: 60)
            task.fail_attempt(IOError.new("disk full"))
            expect(task).to be_completed_task
          end
        end
      RUBY
      expect(status.success?).to be(false)
      expect(out).to include("3 examples, 3 failures")
      expect(out).to include('expected list "uploads" to hold a FetchFile task with id "u9", ' \
                             'but it holds 1: FetchFile "u1" {:filename=>"u1.txt"}')
      expect(out).to include('expected list "uploads" not to hold a task with id "u1", ' \
                             'but it holds FetchFile "u1" {:filename=>"u1.txt"}')
      expect(out).to include("expected task uploads/u1 to be completed, but it is still stored " \
                             '(FetchFile, attempts: 1, last error: "IOError: disk full")')
    end
  end

  describe "with Minitest" do
    def minitest(body)
      <<~RUBY
        require "minitest/autorun"
        require "task/testing"
        #{TASK_CLASS}
        class UploadsTest < Minitest::Test
          include Task::Testing::Minitest
          i_suck_and_my_tests_are_order_dependent!
        #{body}
        end
      RUBY
    end

    it "gives each test a fresh memory store and its assertions pass" do
      out, status = run_ruby("uploads_test.rb", minitest(<<~RUBY))
        def test_1_saves
          task = FetchFile.create(task_list: "uploads", id: "u1", filename: "u1.txt")
          assert_task_saved "uploads"
          assert_task_saved "uploads", FetchFile, id: "u1", data: { filename: "u1.txt" }
          refute_task_saved "uploads", id: "u2"
          task.complete
          assert_task_completed task
          assert_task_completed %w[uploads u1]
        end

        def test_2_starts_empty
          FetchFile.create(task_list: "other", id: "o1")
          refute_task_saved "uploads"
          assert_equal [], Task::Task.all("uploads").to_a
        end
      RUBY
      expect(status.success?).to be(true), out
      expect(out).to match(/2 runs, \d+ assertions, 0 failures, 0 errors/)
      expect(out.lines.grep(/warning:/).grep(/#{Regexp.escape(lib)}/)).to eq([])
    end

    it "fails a test whose task is not saved, or not completed, saying what the list holds" do
      out, status = run_ruby("failing_test.rb", minitest(<<~RUBY))
        def test_saved
          FetchFile.create(task_list: "uploads", id: "u1", filename: "u1.txt")
          assert_task_saved "uploads", Integer
        end

        def test_completed
          assert_task_completed FetchFile.create(task_list: "uploads", id: "u2")
        end
      RUBY
      expect(status.success?).to be(false)
      expect(out).to match(/2 runs, \d+ assertions, 2 failures, 0 errors/)
      expect(out).to include('expected list "uploads" to hold a Integer task, but it holds 1: FetchFile "u1" {:filename=>"u1.txt"}')
      expect(out).to include("expected task uploads/u2 to be completed, but it is still stored (FetchFile, never claimed)")
    end
  end

  it "refuses a test in a second thread while one holds the default store (one store a process)" do
    out, status = run_ruby("threads.rb", <<~RUBY)
      require "task"
      require "task/testing"
      #{TASK_CLASS}
      first_in = Queue.new
      second_done = Queue.new
      first = Thread.new do
        Task::Testing.start
        FetchFile.create(task_list: "a", id: "1")
        first_in << true
        second_done.pop
        mismatch = Task::Testing.saved_task_mismatch("a")
        Task::Testing.stop
        mismatch
      end
      second = Thread.new do
        first_in.pop
        Task::Testing.start
        :started
      rescue Task::Error => e
        e.message
      ensure
        second_done << true
      end
      p [second.value, first.value]
    RUBY
    expect(status.success?).to be(true), out
    second, first = eval(out.lines.last) # rubocop:disable Security/Eval
    expect(second).to match(/another thread's test is using the default store; .* not in threads/)
    expect(first).to be_nil # the first test's store was left alone
  end
end
