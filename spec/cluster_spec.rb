# frozen_string_literal: true

require "timeout"
require "tmpdir"

# The gem on a real cluster: three nodes in two datacenters (bin/cassandra cluster), nodes
# SIGKILLed while tasks flow. The group starts the cluster once (nodes already up are left as
# they are) and stops it at its end; its wall time is reported below its last example.
#
# Keyspaces: task_c3 (SimpleStrategy, 3 replicas: QUORUM survives one node), task_dc
# (NetworkTopologyStrategy dc1: 2, dc2: 1) and task_c1 (one replica: each partition on one
# node, for routing).
RSpec.describe "on a cluster of three nodes in two datacenters", :cluster do
  before(:all) do
    @group_started = now
    Cluster.start!
    @cluster_up = now - @group_started
    Cluster.adapter("task_c3").create_schema(replication_factor: 3)
    Cluster.adapter("task_dc").create_schema(replication: { "dc1" => 2, "dc2" => 1 })
    Cluster.adapter("task_c1").create_schema(replication_factor: 1, claims: false)
    rss = (1..Cluster::NODES).sum do |k|
      pid = Integer(Cluster.run!("pid", k.to_s).strip)
      File.read("/proc/#{pid}/status")[/^VmRSS:\s+(\d+)/, 1].to_i / 1024.0
    end
    report format("cluster up in %.0f s (nodes already up are kept); RSS of its nodes %.0f MB", @cluster_up, rss)
  end

  after(:all) do
    Cluster.stop!
    report format("cluster group: %.0f s wall in all, the cluster's start included", now - @group_started)
  end

  def quorum(keyspace = "task_c3", **options)
    Cluster.adapter(keyspace, consistency: :quorum, request_timeout: 5, retry_deadline: 30, **options)
  end

  it "sends a find to a replica of its partition (token-aware routing): no second hop" do
    adapter = Cluster.adapter("task_c1", consistency: :one)
    list = unique_list("routed")
    adapter.store(FetchFile.build(task_list: list, id: "r"))
    replica, = Cluster.replicas("task_c1", list)
    5.times { adapter.find(list, "r") } # every pool open before counting
    before = (1..Cluster::NODES).map { |k| Cluster.requests(k) }
    300.times { expect(adapter.find(list, "r")).to be_a(FetchFile) }
    served = (1..Cluster::NODES).map { |k| Cluster.requests(k) - before[k - 1] }
    report "300 finds of a partition held by node #{replica} alone: requests served by node 1-3: #{served.inspect}"
    expect(served[replica - 1]).to be >= 300
    # The others see only the driver's own traffic (keepalives, metadata refreshes).
    (served.each_index.to_a - [replica - 1]).each { |i| expect(served[i]).to be < 20 }
  end

  it "sends nothing to the other datacenter when told its local one" do
    # Contact points in dc1 only, so that the driver's control connection is there too.
    adapter = Cluster.adapter("task_dc", hosts: Cluster.addresses.first(2), local_datacenter: "dc1",
                                         consistency: :local_quorum)
    list = unique_list("local")
    adapter.find(list, "warm")
    sleep 1 # the pools to every node open, dc2's too
    before = (1..Cluster::NODES).map { |k| Cluster.requests(k) }
    500.times do |i|
      adapter.store(FetchFile.build(task_list: list, id: i.to_s))
      adapter.find(list, i.to_s)
    end
    served = (1..Cluster::NODES).map { |k| Cluster.requests(k) - before[k - 1] }
    report "1,000 requests with local_datacenter dc1: served by node 1-3 (node 3 is dc2): #{served.inspect}"
    expect(served[0] + served[1]).to be >= 1000
    expect(served[2]).to be <= 2 # a keepalive at most
    expect(adapter.count(list)).to eq(500)
  end

  it "loses nothing while a node is SIGKILLed and restarted: saves, bulk saves, a scan, a lone contact point, LOCAL_QUORUM in the surviving datacenter, and leases raced by four processes" do
    c3 = quorum
    scan_list = unique_list("scan")
    scan_ids = (1..30_000).map { |i| format("%06d", i) }
    scan_ids.each_slice(5_000) { |ids| c3.store_many(ids.map { |id| FetchFile.build(task_list: scan_list, id: id) }) }
    lease_list = unique_list("lease")
    c3.store_many((1..2_000).map { |i| FetchFile.build(task_list: lease_list, id: format("%04d", i)) })

    dir = Dir.mktmpdir("lease")
    worker = File.expand_path("scripts/lease_worker.rb", __dir__)
    lib = File.expand_path("../lib", __dir__)
    workers = (1..4).map do |w|
      spawn(RbConfig.ruby, "-I", lib, worker, Cluster.addresses.join(","), "task_c3", lease_list, File.join(dir, "w#{w}"),
            err: File.join(dir, "w#{w}.log"))
    end

    seq_list = unique_list("seq")
    bulk_list = unique_list("bulk")
    raised = Queue.new
    progress = Hash.new(0)
    seq = Thread.new do
      10_000.times do |i|
        c3.store(FetchFile.build(task_list: seq_list, id: format("%05d", i)))
        progress[:seq] += 1
      rescue Task::Error => e
        raised << e
      end
    end
    bulk = Thread.new do
      (0...10_000).each_slice(500).with_index do |ids, chunk|
        # Paced by the sequential saves, so that the kill finds it half-way too.
        sleep 0.05 while progress[:seq] < chunk * 200 && seq.alive?
        c3.store_many(ids.map { |i| FetchFile.build(task_list: bulk_list, id: format("%05d", i)) }, concurrency: 64)
        progress[:bulk] += ids.size
      rescue Task::Error => e
        raised << e
      end
    end
    scanned = []
    scan = Thread.new do
      Cluster.adapter("task_c3", consistency: :quorum, page_size: 1000, request_timeout: 5, retry_deadline: 30)
             .all(scan_list).each_with_index do |t, i|
        scanned << t.id
        # A page at a time, paced by the sequential saves: the kill lands mid-scan.
        sleep 0.05 while (i % 1000).zero? && progress[:seq] < i / 1000 * 130 && seq.alive?
      end
    rescue Task::Error => e
      raised << e
    end
    lone = Cluster.adapter("task_c3", hosts: [Cluster.address(3)], consistency: :quorum, request_timeout: 5,
                                      retry_deadline: 30)
    lone.store(FetchFile.build(task_list: seq_list, id: "lone-before"))

    sleep 0.2 until progress[:seq] >= 2_000
    Cluster.kill!(3)
    killed_at = now
    report format("node 3 killed after %d sequential saves, %d bulk saves, %d tasks scanned",
                  progress[:seq], progress[:bulk], scanned.size)

    # The session opened through node 3 alone carries on through the others.
    lone.store(FetchFile.build(task_list: seq_list, id: "lone-after"))
    expect(lone.find(seq_list, "lone-before")).to be_a(FetchFile)
    # dc2 (node 3) is gone; dc1 at LOCAL_QUORUM does not notice.
    dc1 = Cluster.adapter("task_dc", local_datacenter: "dc1", consistency: :local_quorum, request_timeout: 5,
                                     retry_deadline: 30)
    dc_list = unique_list("dc1")
    200.times { |i| dc1.store(FetchFile.build(task_list: dc_list, id: i.to_s)) }
    expect(dc1.count(dc_list)).to eq(200)

    [seq, bulk, scan].each { |t| expect(t.join(600)).to be_truthy }
    errors = []
    errors << raised.pop until raised.empty?
    expect(errors.map { |e| "#{e.class}: #{e.message}" }).to eq([])
    expect(scanned.size).to eq(30_000)
    expect(scanned).to eq(scan_ids) # complete, in order, no duplicates
    seq_ids = (0...10_000).map { |i| format("%05d", i) }
    # Read back at QUORUM while node 3 is down.
    expect(c3.all(seq_list).map(&:id).to_a).to eq(seq_ids + %w[lone-after lone-before])
    expect(c3.all(bulk_list).map(&:id).to_a).to eq(seq_ids)
    down_for = now - killed_at

    restarting = now
    Cluster.restart!(3)
    restarted = now - restarting
    statuses = {}
    workers.each do |pid|
      done = Process.waitpid2(pid, Process::WNOHANG)
      statuses[pid] = done[1] if done
    end
    busy = workers.size - statuses.size
    report format("node 3 down %.0f s, restarted in %.0f s; %d of 4 lease workers were still at work when it was back",
                  down_for, restarted, busy)

    # Read back at ALL once every replica is up again.
    all = Cluster.adapter("task_c3", consistency: :all, request_timeout: 5, retry_deadline: 60)
    expect(all.all(seq_list).count).to eq(10_002)
    expect(all.all(bulk_list).map(&:id).to_a).to eq(seq_ids)

    workers.each_with_index do |pid, i|
      statuses[pid] ||= Timeout.timeout(300) { Process.waitpid2(pid)[1] }
      expect(statuses[pid].success?).to be(true), "lease worker #{i + 1}: #{File.read(File.join(dir, "w#{i + 1}.log"))}"
    end
    executed = (1..4).flat_map { |w| File.readlines(File.join(dir, "w#{w}"), chomp: true) }
    counts = executed.tally
    expect(counts.keys.sort).to eq((1..2_000).map { |i| format("%04d", i) })
    expect(counts.select { |_, n| n > 1 }).to eq({})
    expect(c3.count(lease_list)).to eq(0)
    per_worker = (1..4).map { |w| File.readlines(File.join(dir, "w#{w}")).size }
    report "leases: 2,000 tasks executed once each across the kill and restart; per worker #{per_worker.inspect}"
  ensure
    [scan_list, seq_list, bulk_list, lease_list].compact.each { |l| c3&.delete_list(l) rescue nil } # rubocop:disable Style/RescueModifier
    FileUtils.rm_rf(dir) if dir
  end

  it "with two of three nodes down (all of dc1) fails within retry_deadline plus one request timeout, reads at ONE on, fails over to dc2 only when told, and recovers after the restart" do
    list = unique_list("two-down")
    seeded = quorum
    seeded.store(FetchFile.build(task_list: list, id: "kept"))
    dc_list = unique_list("failover")
    local = ->(**o) { Cluster.adapter("task_dc", local_datacenter: "dc1", consistency: :local_quorum, **o) }
    local.call.store(FetchFile.build(task_list: dc_list, id: "before"))
    Cluster.kill!(1)
    Cluster.kill!(2)

    strict = quorum(request_timeout: 3, retry_deadline: 8)
    started = now
    refusal = nil
    expect { strict.store(FetchFile.build(task_list: list, id: "refused")) }.to raise_error { |e| refusal = e }
    elapsed = now - started
    expect(refusal).to be_a(Task::Error::Unavailable).or be_a(Task::Error::Timeout)
    expect(elapsed).to be < 8 + 3 + 1
    one = Cluster.adapter("task_c3", consistency: :one, request_timeout: 3, retry_deadline: 20)
    expect(one.find(list, "kept")).to be_a(FetchFile)

    # dc1 is gone. Kept to it, calls fail; allowed to fail over, they go to dc2 (node 3), whose
    # one replica is its LOCAL_QUORUM.
    stay = local.call(request_timeout: 3, retry_deadline: 5)
    started = now
    expect { stay.find(dc_list, "before") }.to raise_error(Task::Error::NoHostAvailable)
    stayed = now - started
    expect(stayed).to be < 5 + 3 + 1
    away = local.call(datacenter_failover: true, request_timeout: 3, retry_deadline: 20)
    expect(away.find(dc_list, "before")).to be_a(FetchFile)
    away.store(FetchFile.build(task_list: dc_list, id: "away"))
    expect(away.find(dc_list, "away")).to be_a(FetchFile)
    report format("dc1 down: the QUORUM save raised %s after %.1f s (retry_deadline 8, request_timeout 3); " \
                  "reads at ONE served; kept to dc1, NoHostAvailable after %.1f s; with datacenter_failover, " \
                  "served by dc2", refusal.class, elapsed, stayed)

    restarting = now
    Cluster.start!
    back = now - restarting
    recovered = quorum(retry_deadline: 120)
    started = now
    recovered.store(FetchFile.build(task_list: list, id: "after"))
    # A save that timed out may have been written by the one node left (Cassandra does not
    # undo it): a Timeout means "not known", never "not saved". An Unavailable one was not.
    expect(recovered.all(list).map(&:id).to_a - ["refused"]).to eq(%w[after kept])
    report format("both restarted in %.0f s; the first QUORUM save after that took %.1f s", back, now - started)
    expect(local.call(retry_deadline: 60).all(dc_list).map(&:id).to_a).to eq(%w[away before])
  ensure
    seeded&.delete_list(list) rescue nil # rubocop:disable Style/RescueModifier
    seeded&.delete_list(dc_list) rescue nil # rubocop:disable Style/RescueModifier
  end
end
