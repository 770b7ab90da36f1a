# frozen_string_literal: true

RSpec.describe "bin/demo" do
  def run_demo(*args)
    root = File.expand_path("..", __dir__)
    IO.popen([File.join(root, "bin", "demo"), *args, "--tasks", "400", "--crash-rate", "0.1"], err: %i[child out], &:read)
  end

  it "recovers every task whose worker crashed, on the memory store" do
    out = run_demo
    expect($?.success?).to be(true), out
    expect(out).to match(/generated:\s+400/)
    expect(out).to match(/left:\s+0\b/)
    completed = out[/completed first time:\s+(\d+)/, 1].to_i
    recovered = out[/recovered:\s+(\d+)/, 1].to_i
    expect(recovered).to be > 0
    expect(completed + recovered).to eq(400)
  end

  it "does the same on Cassandra" do
    out = run_demo("--cassandra")
    expect($?.success?).to be(true), out
    expect(out).to match(/store:\s+cassandra/)
    expect(out).to match(/left:\s+0\b/)
  end
end
