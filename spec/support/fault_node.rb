# frozen_string_literal: true

# A second Cassandra node of the tests' own, on its own port, that fault tests may pause, kill
# and restart (by the pid bin/cassandra recorded) without disturbing the main node. It uses
# PasswordAuthenticator, so login tests run against it too, and acknowledges a write only once
# it is on disk (commitlog_sync: batch), so a SIGKILL cannot lose an acknowledged save.
module FaultNode
  module_function

  ROOT = File.expand_path("../..", __dir__)
  PORT = Integer(ENV.fetch("TASK_FAULT_CASSANDRA_PORT", "9142"))
  TOMBSTONE_FAILURE = 5000
  USERNAME = "cassandra"
  PASSWORD = "cassandra"

  def env
    {
      "TASK_CASSANDRA_PORT" => PORT.to_s,
      "TASK_CASSANDRA_STORAGE_PORT" => (PORT - 9042 + 7000).to_s,
      "TASK_CASSANDRA_AUTHENTICATOR" => "PasswordAuthenticator",
      "TASK_CASSANDRA_UNSAFESYSTEM" => "false",
      "TASK_CASSANDRA_COMMITLOG_SYNC" => "batch",
      # So that a spec can make a read fail on tombstones with thousands of completed tasks,
      # not the default hundred thousand.
      "TASK_CASSANDRA_TOMBSTONE_FAILURE" => TOMBSTONE_FAILURE.to_s
    }
  end

  def cassandra(*args)
    out = IO.popen(env, [File.join(ROOT, "bin", "cassandra"), *args], err: %i[child out], &:read)
    [$?.success?, out]
  end

  def start!
    ok, out = cassandra("start")
    raise "the fault-test node did not start:\n#{out}" unless ok

    @started = true
  end

  # Started once for every spec that needs it; stopped when the suite ends.
  def ensure_started!
    return if @ready

    start!
    adapter.create_schema
    @ready = true
  end

  def stop!
    cassandra("stop") if @started
  end

  # Runs nodetool against this node (bin/cassandra nodetool); its output, or an error with it.
  def nodetool(*args)
    ok, out = cassandra("nodetool", *args)
    raise "nodetool #{args.join(" ")} failed:\n#{out}" unless ok

    out
  end

  # One figure of `nodetool tablestats keyspace.table`, by its label.
  def table_stat(table, label)
    line = nodetool("tablestats", table).lines.find { |l| l.strip.start_with?("#{label}:") }
    raise "nodetool tablestats #{table} printed no #{label.inspect}" unless line

    Float(line.split(":", 2).last.strip)
  end

  def pid
    ok, out = cassandra("pid")
    raise "the fault-test node is not running" unless ok

    Integer(out.strip)
  end

  def adapter(**options)
    Task::DataInterface::CassandraAdapter.new(hosts: ["127.0.0.1"], port: PORT, keyspace: "task_faults",
                                              username: USERNAME, password: PASSWORD, **options)
  end
end

# A node that accepts only TLS clients, with a certificate from a CA of its own (see
# bin/cassandra's TASK_CASSANDRA_TLS); started by the TLS spec, stopped when the suite ends.
module TlsNode
  module_function

  PORT = Integer(ENV.fetch("TASK_TLS_CASSANDRA_PORT", "9242"))

  def env
    { "TASK_CASSANDRA_PORT" => PORT.to_s, "TASK_CASSANDRA_STORAGE_PORT" => (PORT - 9042 + 7000).to_s,
      "TASK_CASSANDRA_TLS" => "1" }
  end

  def ensure_started!
    return if @ready

    out = IO.popen(env, [File.join(FaultNode::ROOT, "bin", "cassandra"), "start"], err: %i[child out], &:read)
    raise "the TLS node did not start:\n#{out}" unless $?.success?

    @started = true
    adapter.create_schema
    @ready = true
  end

  def stop!
    IO.popen(env, [File.join(FaultNode::ROOT, "bin", "cassandra"), "stop"], err: %i[child out], &:read) if @started
  end

  def ca_file
    File.join(FaultNode::ROOT, "tmp", "cassandra-#{PORT}", "tls", "ca.pem")
  end

  def adapter(**options)
    Task::DataInterface::CassandraAdapter.new(port: PORT, keyspace: "task_tls", tls_ca_file: ca_file, **options)
  end
end
