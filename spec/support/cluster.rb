# frozen_string_literal: true

# The test cluster of bin/cassandra: three nodes on 127.0.0.2-4, dc1 (nodes 1 and 2) and dc2
# (node 3), started once by the cluster spec group and stopped at its end. Nodes are killed
# and restarted by the pids bin/cassandra recorded.
module Cluster
  module_function

  ROOT = File.expand_path("../..", __dir__)
  NODES = 3
  DCS = 2

  def cassandra(*args)
    out = IO.popen([File.join(ROOT, "bin", "cassandra"), "cluster", *args], err: %i[child out], &:read)
    [$?.success?, out]
  end

  def run!(*args)
    ok, out = cassandra(*args)
    raise "bin/cassandra cluster #{args.join(" ")} failed:\n#{out}" unless ok

    out
  end

  def start!
    run!("start", "--nodes", NODES.to_s, "--dcs", DCS.to_s)
  end

  def stop!
    cassandra("stop")
  end

  def kill!(node)
    run!("kill", node.to_s)
  end

  def restart!(node)
    run!("restart", node.to_s)
  end

  def address(node)
    "127.0.0.#{node + 1}"
  end

  def addresses
    (1..NODES).map { |k| address(k) }
  end

  # The node number of an address.
  def node_at(address)
    addresses.index(address)&.+(1) or raise "no cluster node at #{address.inspect}"
  end

  def nodetool(node, *args)
    run!("nodetool", node.to_s, *args)
  end

  # The requests node K has served on the client connections open now (nodetool
  # clientstats: system_views.clients' request counts).
  def requests(node)
    lines = nodetool(node, "clientstats", "--all").lines
    header = lines.find { |l| l.start_with?("Address") } or return 0
    at = header.index("Requests") or raise "nodetool clientstats printed no Requests column:\n#{lines.join}"
    # A fixed-width table whose Keyspace column may be blank: read the column where it is.
    lines.select { |l| l.start_with?("/") }.sum { |l| Integer(l[at..].split.first) }
  end

  # The nodes holding a list's partition, by nodetool getendpoints.
  def replicas(keyspace, list)
    nodetool(1, "getendpoints", keyspace, "tasks", list).split.map { |a| node_at(a) }
  end

  def adapter(keyspace, **options)
    Task::DataInterface::CassandraAdapter.new(hosts: addresses, keyspace: keyspace, **options)
  end
end
