# frozen_string_literal: true

require "spec_helper"
require "open3"
require "rbconfig"

# Task::Job, Task::Recovery and the ActiveJob serializer (task/job, task/active_job) on the
# memory store, with ActiveJob's inline and async adapters and Sidekiq's testing mode. They
# run in a process of their own: ActiveJob brings ActiveSupport's core extensions, and
# sidekiq/testing replaces Sidekiq's client, neither of which may leak into this process.
# spec/jobs_sidekiq_spec.rb runs the same mixins in real Sidekiq processes on Cassandra.
RSpec.describe "Task::Job, Task::Recovery and the ActiveJob serializer" do
  it "pass their checks (spec/jobs/job_checks.rb) in a process of their own, loading without warnings from lib/" do
    lib = File.expand_path("../lib", __dir__)
    checks = File.join(__dir__, "jobs", "job_checks.rb")
    started = now
    out, status = Open3.capture2e(RbConfig.ruby, "-w", "-e", 'require "rspec/core"; exit RSpec::Core::Runner.run(ARGV)',
                                  checks, "--no-color")
    expect(status.success?).to be(true), out
    expect(out).to match(/^\d+ examples, 0 failures$/)
    expect(out.lines.grep(/warning:/).grep(/#{Regexp.escape(lib)}/)).to eq([])
    report("job checks: #{out[/^(\d+) examples/, 1]} examples in a subprocess, #{(now - started).round(1)} s")
  end
end
