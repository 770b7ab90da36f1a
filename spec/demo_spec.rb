# frozen_string_literal: true

# bin/demo runs the main job for real: worker processes SIGKILLed inside execute, a recovery
# process with claim_each. The figures it prints are measured by the demo from its execution
# log; this spec checks them, and reads the log itself too.
RSpec.describe "bin/demo" do
  def root
    File.expand_path("..", __dir__)
  end

  def run_demo(*args)
    IO.popen([File.join(root, "bin", "demo"), *args, "--tasks", "400", "--workers", "4", "--kill", "2"],
             err: %i[child out], &:read)
  end

  def figure(out, name)
    value = out[/^#{Regexp.escape(name)}:\s+(\d+)/, 1]
    expect(value).not_to be_nil, "no \"#{name}\" in:\n#{out}"
    Integer(value)
  end

  # The figures every store must show, and the execution log read here: each task's
  # finished execution once, by a worker or by the recovery.
  def expect_real_recovery(out)
    expect($?.success?).to be(true), out
    expect(figure(out, "generated")).to eq(400)
    expect(figure(out, "left")).to eq(0)
    expect(figure(out, "executed twice while claimed")).to eq(0)
    expect(figure(out, "executed again otherwise")).to eq(0)
    killed = figure(out, "workers killed")
    expect(killed).to eq(2)
    expect(figure(out, "executed again after a crash")).to eq(killed)
    first = figure(out, "completed first time")
    recovered = figure(out, "recovered")
    expect(recovered).to be > 0
    expect(first).to be > 0
    expect(first + recovered).to eq(400)

    log = File.join(root, out[/^execution log:\s+(\S+)/, 1])
    ids = File.readlines(log).map { |l| l.split.first }
    expect(ids.size).to eq(400)
    expect(ids.uniq.size).to eq(400)
  end

  it "kills worker threads inside execute and recovers with claim_each, on the memory store" do
    out = run_demo("--memory")
    expect(out).to match(/^store:\s+memory/)
    expect(out).to match(/^workers:\s+4 threads/)
    expect(out).to match(/^workers killed:\s+2 \(Thread#kill inside execute/)
    expect_real_recovery(out)
  end

  it "SIGKILLs worker processes inside execute and recovers in a process of its own, on Cassandra" do
    out = run_demo("--cassandra")
    expect(out).to match(/^store:\s+Cassandra/)
    expect(out).to match(/^workers:\s+4 processes/)
    expect(out).to match(/^workers killed:\s+2 \(SIGKILL inside execute/)
    expect(out).to match(/^recovered:\s+\d+ \(claim_each in a process of its own/)
    expect_real_recovery(out)
  end
end
