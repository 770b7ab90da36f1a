# frozen_string_literal: true

# bin/demo runs the main job for real: workers killed inside execute, a recovery with
# claim_each. The figures it prints are measured by the demo from its execution log;
# DemoRun (spec/support/demo_run.rb) checks them and reads the log itself too.
RSpec.describe "bin/demo" do
  include DemoRun

  it "kills worker threads inside execute and recovers with claim_each, on the memory store" do
    out = run_demo("--memory")
    expect(out).to match(/^store:\s+memory/)
    expect(out).to match(/^workers:\s+4 threads/)
    expect(out).to match(/^workers killed:\s+2 \(Thread#kill inside execute/)
    expect_real_recovery(out)
    expect(out).to match(/^executed again after a crash:\s+2$/)
  end

  it "SIGKILLs worker processes inside execute and recovers in a process of its own, on Cassandra" do
    # The node named as host:port, as the command and the library take it.
    node = "#{cassandra_options[:hosts].first}:#{cassandra_options[:port]}"
    out = run_demo("--cassandra", env: { "TASK_CASSANDRA_HOSTS" => "#{node},#{node}", "TASK_CASSANDRA_PORT" => nil })
    expect(out).to match(/^store:\s+Cassandra, #{Regexp.escape(node)}, keyspace/)
    expect(out).to match(/^workers:\s+4 processes/)
    expect(out).to match(/^workers killed:\s+2 \(SIGKILL inside execute/)
    expect(out).to match(/^recovered:\s+\d+ \(claim_each in a process of its own/)
    expect_real_recovery(out)
    # Every store keeps a claim at least as long as asked: a killed worker's task ran again
    # only after its lease, so each re-run counts as after a crash, not as twice while claimed.
    expect(out).to match(/^executed again after a crash:\s+2$/)
  end
end
