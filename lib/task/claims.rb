# frozen_string_literal: true

require "socket"

module Task
  #--
  # Claims: a worker holds a task for a while, so that a recovery job does not run it again
  # meanwhile; each claim won counts an attempt, a failure is recorded, and a task whose
  # attempts are used up is dead until retried. Nothing here changes a task's row: claims
  # live beside the tasks (see the README), and code that uses only task_rb's API never
  # touches them.
  module Task
    # Tasks claim_each takes from the list at a time.
    CLAIM_SLICE = 100

    # The owner a claim names unless told otherwise: this host, process and thread.
    def self.default_owner
      "#{Socket.gethostname}:#{Process.pid}:#{Thread.current.object_id}"
    end

    # Claims this task for `for:` seconds: true when this owner now holds it, false when
    # another holds a live claim, the task is dead (its attempts used up) or gone. No other
    # owner can claim it for at least `for:` seconds from the moment this returns; the claim
    # lapses by itself, by the store's clock, at most `for:` rounded up plus 2 seconds after
    # that (Cassandra counts its time to live in whole seconds from the current one). `for:`
    # is refused (ArgumentError) past 20 years or past 2038-01-19T03:14:06Z, as `ttl:` is.
    def claim(for:, owner: nil)
      owner ||= ::Task::Task.default_owner
      status, attempts = ::Task::Task.interface.claim(task_list, id, binding.local_variable_get(:for), owner)
      @claim_owner = owner if status == :won
      @attempts = attempts if attempts
      status == :won
    end

    # Extends this owner's claim for `for:` seconds from now (kept as a claim is); false when
    # it holds none.
    def renew(for:, owner: nil)
      ::Task::Task.interface.renew(task_list, id, binding.local_variable_get(:for), claim_owner(owner))
    end

    # Gives the claim up (the task stays, for another to claim); false when not held.
    def release(owner: nil)
      ::Task::Task.interface.release(task_list, id, claim_owner(owner), nil).tap { @claim_owner = nil }
    end

    # Records `error` (its class and message) as the task's last error and gives the claim
    # up; false when this owner holds no claim on it. (Not `fail`: inside a task class that
    # would shadow Kernel#fail, with which `fail "message"` raises.)
    #
    # The text is stored as UTF-8 whatever the message's encoding: a message in another
    # encoding (UTF-16, ISO-8859-1, ...) is transcoded, and bytes that are not valid in it (a
    # binary message is read as UTF-8) become U+FFFD.
    def fail_attempt(error, owner: nil)
      text = if error.is_a?(Exception)
               "#{::Task::Task.utf8(error.class.name || error.class.inspect)}: #{::Task::Task.utf8(error.message)}"
             else
               ::Task::Task.utf8(error)
             end
      ::Task::Task.interface.release(task_list, id, claim_owner(owner), text).tap { @claim_owner = nil }
    end

    # `text` (any object, by its to_s) as valid UTF-8: transcoded from its own encoding, with
    # each byte sequence that is invalid in it, or has no UTF-8 form, replaced by U+FFFD; a
    # binary (ASCII-8BIT) String is taken as UTF-8.
    def self.utf8(text)
      text = text.to_s
      case text.encoding
      when Encoding::UTF_8 then text.scrub("\uFFFD")
      when Encoding::BINARY then text.dup.force_encoding(Encoding::UTF_8).scrub("\uFFFD")
      else text.encode(Encoding::UTF_8, invalid: :replace, undef: :replace, replace: "\uFFFD")
      end
    end

    # Claims won so far.
    def attempts
      @attempts || claim_state&.fetch(:attempts) || 0
    end

    # "Class: message" of the last failure recorded, or nil.
    def last_error
      return @last_error if defined?(@last_error)

      claim_state&.fetch(:last_error)
    end

    # Makes the task claimable again: attempts and last error cleared.
    def retry!
      ::Task::Task.interface.retry_task(task_list, id)
      @attempts = 0
      @last_error = nil
      nil
    end

    def self.dead(task_list)
      interface.dead(task_list)
    end

    # Tasks claim_each claims in one transaction unless told otherwise (`batch:`). Twenty
    # divide the transactions a list needs by twenty, while a batch is still small enough
    # that the tasks it holds unreached are few (others skip them until they are run or
    # given back), that two workers reaching for the same window rarely collide, and that a
    # batch of quick tasks is run well within any lease (none is renewed).
    CLAIM_BATCH = 20

    # The most tasks one batch may claim.
    MAX_CLAIM_BATCH = 500

    # Windows of `batch:` tasks in each slice of the list a walk reads at a time: each walk
    # hands them out in an order of its own, so that processes walking the same list start
    # apart.
    CLAIM_WINDOWS = 64

    # The recovery loop: walks the list (lazily, as `all`), claims each task for `for:`
    # seconds and yields only those it won; a task is completed when the block returns.
    # When the block raises, the error is recorded with `fail_attempt` (so the task comes back
    # for another attempt once the claim is given up) and re-raised. Tasks others hold
    # are skipped; lapsed claims are taken over. Returns how many tasks were run.
    #
    # `batch:` tasks (default CLAIM_BATCH) are claimed in one transaction; `batch: 1` claims
    # each by itself, as before. Calls of one process walking the same list at the same time
    # (threads) share one walk: the list is read once for all of them and each window of
    # `batch:` tasks goes to one of them. A task of a batch is run only while at least half of `for:`
    # is left of its lease by this worker's monotonic clock, counted from the moment the claim
    # was sent (the store's lease starts later and lasts longer); otherwise the tasks of the
    # batch not reached yet are renewed first, in one transaction, and those whose renewal
    # fails are skipped. Tasks claimed and not reached (the block
    # raised, the thread was interrupted or killed) are given back: released, their attempt
    # uncounted. `stats:` (a Hash) is filled with what the walk did: :ran, :batches,
    # :collisions (tasks another worker took between this one's read and its transaction),
    # :transactions, :settled (transactions whose answer was lost, settled by a serial read),
    # :renewed, :skipped (renewals that failed), :given_back.
    #
    # `on_failure:` (a callable taking the task and the error): a StandardError from the block
    # is recorded with `fail_attempt` as always, then handed to it, and the walk goes on
    # instead of raising (what a recovery job wants: Task::Recovery uses it). Other exceptions
    # (Interrupt, SignalException) are recorded and raised.
    def self.claim_each(task_list, for:, owner: nil, batch: CLAIM_BATCH, stats: nil, on_failure: nil)
      raise ArgumentError, "claim_each needs a block" unless block_given?
      unless on_failure.nil? || on_failure.respond_to?(:call)
        raise ArgumentError, "claim_each on_failure: must respond to call(task, error), got #{on_failure.inspect}"
      end
      unless batch.is_a?(Integer) && batch.between?(1, MAX_CLAIM_BATCH)
        raise ArgumentError, "claim_each batch: must be an Integer from 1 to #{MAX_CLAIM_BATCH}, got #{batch.inspect}"
      end

      lease = binding.local_variable_get(:for)
      stats ||= {}
      %i[ran batches collisions transactions settled renewed skipped given_back].each { |k| stats[k] ||= 0 }
      # A stats Hash given again adds up across calls; this call returns its own count.
      ran_before = stats[:ran]
      iface = interface
      if batch == 1 || !iface.claims_many?
        claim_one_by_one(task_list, lease, owner, stats, on_failure) { |t| yield t }
      else
        owner ||= default_owner
        walk = ClaimWalk.new(iface, task_list, lease, owner, stats, on_failure)
        SharedWalk.join(iface, task_list, batch) do |shared|
          while (window = shared.next_window)
            walk.run(window) { |t| yield t }
          end
        end
      end
      stats[:ran] - ran_before
    end

    # claim_each with `batch: 1`: each task claimed by itself, run, completed.
    def self.claim_one_by_one(task_list, lease, owner, stats, on_failure)
      # A slice at a time, shuffled: workers walking the same list then rarely reach for
      # the same task at the same moment.
      all(task_list).each_slice(CLAIM_SLICE) do |slice|
        slice.shuffle.each do |task|
          stats[:transactions] += 1
          next unless task.claim(for: lease, owner: owner)

          begin
            yield task
          rescue Exception => e # rubocop:disable Lint/RescueException
            task.fail_attempt(e, owner: owner)
            raise unless on_failure && e.is_a?(StandardError)

            on_failure.call(task, e)
            next
          end
          task.complete
          stats[:ran] += 1
        end
      end
    end
    private_class_method :claim_one_by_one

    # The windows of one list that claim_each calls of one process walking it at the same time
    # (threads, each its own owner) share: the list is read once for all of them, a slice at a
    # time, and each window goes to one of them, so that they never reach for the same tasks.
    # The windows of a slice are handed out in an order of this walk's own (random), so that
    # processes walking the same list reach for different tasks first.
    class SharedWalk
      @walks = {}
      @lock = Mutex.new

      class << self
        # Yields the walk of `task_list` in progress in this process for `iface` and `batch`,
        # or a new one.
        def join(iface, task_list, batch)
          # A forked child starts walks of its own.
          key = [Process.pid, iface.object_id, task_list, batch]
          walk = @lock.synchronize do
            w = @walks[key]
            w = @walks[key] = new(task_list, batch) if w.nil? || w.done?
            w.users += 1
            w
          end
          yield walk
        ensure
          if walk
            @lock.synchronize do
              walk.users -= 1
              @walks.delete(key) if walk.users.zero? && @walks[key].equal?(walk)
            end
          end
        end
      end

      attr_accessor :users

      def initialize(task_list, batch)
        @list = task_list
        @batch = batch
        @slice = [batch * CLAIM_WINDOWS, CLAIM_SLICE].max
        @order = Random.new
        @pending = []
        @after = nil
        @done = false
        @users = 0
        @lock = Mutex.new
      end

      def done?
        @lock.synchronize { @done && @pending.empty? }
      end

      # The next window of tasks, or nil once the list has been walked to its end.
      def next_window
        @lock.synchronize do
          return @pending.shift unless @pending.empty?
          return nil if @done

          slice = ::Task::Task.all(@list, after: @after).first(@slice)
          @done = slice.size < @slice
          return nil if slice.empty?

          @after = slice.last.id
          @pending = slice.each_slice(@batch).to_a.shuffle(random: @order)
          @pending.shift
        end
        # A read that raised leaves the walk where it was: the next caller reads that slice
        # again (the others' walks are not cut short by one thread's error).
      end
    end
    private_constant :SharedWalk

    # One worker's batches of claim_each (see there): claims a window of tasks at once, runs
    # those won while their leases surely last, and gives back what it did not reach.
    class ClaimWalk
      def initialize(iface, task_list, lease, owner, stats, on_failure)
        @on_failure = on_failure
        @iface = iface
        @list = task_list
        @lease = lease
        @owner = owner
        @stats = stats
        # A task is started only while at least this much of its lease is left.
        @margin = lease / 2.0
      end

      def run(window)
        sent = now
        outcomes = claim(window.map(&:id))
        @stats[:batches] += 1
        queue = []
        window.zip(outcomes) do |task, (status, attempts)|
          next unless status == :won

          task.instance_variable_set(:@attempts, attempts)
          task.instance_variable_set(:@claim_owner, @owner)
          queue << [task, attempts, sent]
        end
        completed = []
        begin
          until queue.empty?
            if now - queue.first.last > @lease - @margin
              queue = renew(queue)
              next
            end
            task, attempts, = queue.shift
            begin
              yield task
            rescue Exception => e # rubocop:disable Lint/RescueException
              task.fail_attempt(e, owner: @owner)
              raise unless @on_failure && e.is_a?(StandardError)

              @on_failure.call(task, e)
              next
            end
            @iface.complete_claimed(@list, task.id)
            completed << [task.id, attempts]
            @stats[:ran] += 1
          end
        ensure
          settle(queue, completed, $!)
        end
      end

      private

      def now
        Process.clock_gettime(Process::CLOCK_MONOTONIC)
      end

      # One claim_many, counted: its outcomes.
      def claim(ids)
        outcomes, collisions, transactions, settled = @iface.claim_many(@list, ids, @lease, @owner)
        @stats[:collisions] += collisions
        @stats[:transactions] += transactions
        @stats[:settled] += settled.to_i
        outcomes
      end

      # Renews every task of the batch not reached yet, in one transaction (a claim that lapsed
      # meanwhile and that nobody took is claimed again); those that cannot be are skipped.
      def renew(queue)
        sent = now
        outcomes = claim(queue.map { |task, _, _| task.id })
        queue.zip(outcomes).filter_map do |(task, _, _), (status, attempts)|
          if status == :won
            @stats[:renewed] += 1
            task.instance_variable_set(:@attempts, attempts)
            [task, attempts, sent]
          else
            @stats[:skipped] += 1
            nil
          end
        end
      end

      # Gives back the tasks not reached and forgets the claims of those completed (each while
      # it holds the attempts it was won with: a claim counted since is another worker's); when an
      # error is on its way out already, a failure here does not replace it.
      def settle(queue, completed, raising)
        unless queue.empty?
          held = queue.map { |task, attempts, _| [task.id, attempts] }
          @stats[:given_back] += @iface.give_back(@list, held, @owner)
        end
        @iface.forget_claims(@list, completed) unless completed.empty?
      rescue ::Task::Error
        raise unless raising
      end
    end
    private_constant :ClaimWalk

    private

    def claim_owner(owner)
      owner || @claim_owner || ::Task::Task.default_owner
    end

    def claim_state
      ::Task::Task.interface.claim_info(task_list, id)
    end
  end

  module DataInterface
    # Claims go through the interface to its adapter, as save and find do.
    class Interface
      def claim(task_list, id, seconds, owner)
        adapter.claim(task_list, id, seconds, owner)
      end

      def renew(task_list, id, seconds, owner)
        adapter.renew(task_list, id, seconds, owner)
      end

      def release(task_list, id, owner, error)
        adapter.release(task_list, id, owner, error)
      end

      def retry_task(task_list, id)
        adapter.retry_task(task_list, id)
      end

      # Whether the adapter claims many tasks at once (claim_each's batches); an adapter of
      # an application's own without it is walked one claim at a time.
      def claims_many?
        adapter.respond_to?(:claim_many, true)
      end

      # Claims some tasks of one list in one transaction (see Task::Task.claim_each):
      # [[[status, attempts], ...], collisions, transactions, settled].
      # Publishes a `claim_many.task` event (task_list, count, owner; won and collisions once
      # it returns) to whoever listens.
      def claim_many(task_list, ids, seconds, owner)
        events = ::Task::Instrumentation
        return adapter.__send__(:claim_many, task_list, ids, seconds, owner) unless events.listening?("claim_many.task")

        payload = { task_list: task_list, count: ids.size, owner: owner }
        events.instrument("claim_many.task", payload) do
          adapter.__send__(:claim_many, task_list, ids, seconds, owner).tap do |outcomes, collisions, _, _|
            payload[:won] = outcomes.count { |status, _| status == :won }
            payload[:collisions] = collisions
          end
        end
      end

      # Publishes `complete.task`, as `complete` does.
      def complete_claimed(task_list, id)
        events = ::Task::Instrumentation
        return adapter.__send__(:complete_claimed, task_list, id) unless events.listening?("complete.task")

        events.instrument("complete.task", { task_list: task_list, id: id }, attempts: true) do
          adapter.__send__(:complete_claimed, task_list, id)
        end
      end

      def forget_claims(task_list, won)
        adapter.__send__(:forget_claims, task_list, won)
      end

      def give_back(task_list, held, owner)
        adapter.__send__(:give_back, task_list, held, owner)
      end

      def claims(task_list)
        adapter.claims(task_list)
      end

      # The claim state of one task (as in `claims`), or nil when it has none: that task's
      # claim alone is read (an adapter without `claim_info` is asked for the list's claims).
      def claim_info(task_list, id)
        return adapter.claim_info(task_list, id) if adapter.respond_to?(:claim_info)

        claims(task_list).find { |c| c[:id] == id }
      end

      # The dead tasks of a list (attempts used up), each with its attempts and last error.
      def dead(task_list)
        limit = adapter.max_attempts
        return [] unless limit

        adapter.claims(task_list).select { |c| c[:attempts] >= limit }.filter_map do |c|
          task = find(task_list, c[:id])
          next unless task

          task.instance_variable_set(:@attempts, c[:attempts])
          task.instance_variable_set(:@last_error, c[:last_error])
          task
        end
      end
    end
  end
end

module Task
  module DataInterface
    # Reached through Task::Task.claim_each (Interface#claim_many and its neighbours).
    class NativeAdapter
      private :claim_many, :complete_claimed, :forget_claims, :give_back
    end
  end
end
