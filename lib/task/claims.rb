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

    # The recovery loop: walks the list (lazily, as `all`), claims each task for `for:`
    # seconds and yields only those it won; a task is completed when the block returns.
    # When the block raises, the error is recorded with `fail_attempt` (so the task comes back
    # for another attempt once the claim is given up) and re-raised. Tasks others hold
    # are skipped; lapsed claims are taken over. Returns how many tasks were run.
    def self.claim_each(task_list, for:, owner: nil)
      raise ArgumentError, "claim_each needs a block" unless block_given?

      lease = binding.local_variable_get(:for)
      ran = 0
      # A slice at a time, shuffled: workers walking the same list then rarely reach for
      # the same task at the same moment.
      all(task_list).each_slice(CLAIM_SLICE) do |slice|
        slice.shuffle.each do |task|
          next unless task.claim(for: lease, owner: owner)

          begin
            yield task
          rescue Exception => e # rubocop:disable Lint/RescueException
            task.fail_attempt(e, owner: owner)
            raise
          end
          task.complete
          ran += 1
        end
      end
      ran
    end

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
