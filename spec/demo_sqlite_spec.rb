# frozen_string_literal: true

# bin/demo with no argument runs on a SQLite file under tmp/demo, with worker processes
# SIGKILLed inside execute and a recovery process, all sharing that file.
RSpec.describe "bin/demo on SQLite (its default)" do
  include DemoRun

  it "SIGKILLs worker processes inside execute and recovers in a process of its own" do
    out = run_demo
    expect(out).to match(%r{^store:\s+SQLite, tmp/demo/tasks\.sqlite3$})
    expect(out).to match(/^workers:\s+4 processes/)
    expect(out).to match(/^workers killed:\s+2 \(SIGKILL inside execute/)
    expect(out).to match(/^recovered:\s+\d+ \(claim_each in a process of its own/)
    expect_real_recovery(out)
    # Leases by the host's wall clock, to the fraction: no task of a killed worker ran again
    # before the lease asked for had passed.
    expect(out).to match(/^executed again after a crash:\s+2$/)
  end

  it "runs the same with --sqlite" do
    out = run_demo("--sqlite")
    expect(out).to match(%r{^store:\s+SQLite, tmp/demo/tasks\.sqlite3$})
    expect_real_recovery(out)
  end
end
