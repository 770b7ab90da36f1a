# frozen_string_literal: true

RSpec.describe "the API under GC.stress" do
  it "builds, saves, finds, scans, serializes, completes and raises correctly on both stores" do
    cassandra_adapter # the keyspace exists
    env = { "TASK_CASSANDRA_HOSTS" => cassandra_options[:hosts].join(","),
            "TASK_CASSANDRA_PORT" => cassandra_options[:port].to_s }
    lib = File.expand_path("../lib", __dir__)
    script = File.join(__dir__, "gc_stress", "api.rb")
    out = IO.popen(env, [RbConfig.ruby, "-I", lib, script], err: %i[child out], &:read)
    expect($?.success?).to be(true), out
    expect(out).to eq("memory: ok\ncassandra: ok\n")
  end
end
