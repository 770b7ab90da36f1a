# frozen_string_literal: true

# Runs bin/demo and checks the figures it prints (measured by the demo from its execution
# log), and reads that log here too: for spec/demo_spec.rb and the SQLite demo spec.
module DemoRun
  TASKS = 400
  KILL = 2

  def demo_root
    File.expand_path("../..", __dir__)
  end

  def run_demo(*args, env: {})
    IO.popen(env, [File.join(demo_root, "bin", "demo"), *args, "--tasks", TASKS.to_s, "--workers", "4", "--kill", KILL.to_s],
             err: %i[child out], &:read)
  end

  def demo_figure(out, name)
    value = out[/^#{Regexp.escape(name)}:\s+(\d+)/, 1]
    expect(value).not_to be_nil, "no \"#{name}\" in:\n#{out}"
    Integer(value)
  end

  # The figures every store must show, and each task's finished execution once in the log.
  def expect_real_recovery(out)
    expect($?.success?).to be(true), out
    expect(demo_figure(out, "generated")).to eq(TASKS)
    expect(demo_figure(out, "left")).to eq(0)
    expect(demo_figure(out, "executed twice while claimed")).to eq(0)
    expect(demo_figure(out, "executed again otherwise")).to eq(0)
    killed = demo_figure(out, "workers killed")
    expect(killed).to eq(KILL)
    expect(demo_figure(out, "executed again after a crash")).to eq(killed)
    first = demo_figure(out, "completed first time")
    recovered = demo_figure(out, "recovered")
    expect(recovered).to be > 0
    expect(first).to be > 0
    expect(first + recovered).to eq(TASKS)

    log = File.join(demo_root, out[/^execution log:\s+(\S+)/, 1])
    ids = File.readlines(log).map { |l| l.split.first }
    expect(ids.size).to eq(TASKS)
    expect(ids.uniq.size).to eq(TASKS)
  end
end
