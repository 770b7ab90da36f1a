# frozen_string_literal: true

require "rbconfig"

# lib/task.rb autoloads Task::Job and Task::Recovery: a job class's `include Task::Job` needs
# no require of its own (a Rails app's jobs), a process that runs no jobs loads neither, and
# requiring their files by hand still works, before or after task, in any order, under -w.
RSpec.describe "Task::Job and Task::Recovery, autoloaded by lib/task.rb" do
  lib = File.expand_path("../lib", __dir__)
  used = 'puts [Task::Job::DEFAULT_LEASE, Task::Recovery::Failed.superclass, Task::Recovery.instance_method(:perform).arity].inspect'

  {
    "require task, then Job before Recovery" => %(require "task"; puts $LOADED_FEATURES.grep(%r{/task/(job|recovery)\\.rb\\z}).inspect),
    "require task, then Recovery before Job" => 'require "task"; Task::Recovery::Result.name; puts Task::Job.name',
    "require task/job first" => 'require "task/job"; puts Task::Job.name',
    "require task/recovery first" => 'require "task/recovery"; puts Task::Recovery.name',
    "require task, use Job, then require both files" => 'require "task"; Task::Job::ClassMethods.name; ' \
                                                          'puts [require("task/job"), require("task/recovery")].inspect',
    "require task/active_job first" => 'require "task/active_job"; puts Task::ActiveJobSerializer.name'
  }.each do |order, script|
    it "loads warning-free: #{order}" do
      out = IO.popen([RbConfig.ruby, "-w", "-I", lib, "-e", "#{script}; #{used}"], err: %i[child out], &:read)
      expect($?.success?).to be(true), out
      expect(out.lines.grep(/warning/)).to eq([])
      expect(out.lines.last).to eq("[300, Task::Error, -1]\n")
      expect(out.lines.first).to eq("[]\n") if order.end_with?("Job before Recovery") # nothing loaded until used
      expect(out.lines.first).to eq("[false, true]\n") if order.start_with?("require task, use Job") # job.rb once
    end
  end
end
