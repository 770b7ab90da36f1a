# frozen_string_literal: true

#--
# Documentation only, never required: the methods the native extension (ext/task_native)
# defines, for RDoc and ri (`ri Task::Task#save`), and the overviews of Task and Task::Task
# (the lines after #-- in other files' comments on them are for readers of the source, not
# for ri). The Ruby-defined methods are documented where they are defined; each store's
# adapter class is documented in its own file, lib/task/adapters/STORE.rb. Signatures for
# type checkers are in sig/ (each store's class in sig/adapters/STORE.rbs).
#++

# Generates, tracks and serializes units of work so that background jobs get at-least-once
# completion: a job saves tasks to a durable store (Cassandra, a SQLite file, or memory for
# tests), hands their serialized form to workers, and a worker that finishes a task completes
# it; tasks whose worker died stay stored until a recovery job finds and finishes them. A
# drop-in replacement for task_rb 0.4.0.
#
# Task::Task is the mixin that makes a class a task class; Task::DataInterface holds the
# stores' adapters (CassandraAdapter, SqliteAdapter, MemoryAdapter). The operators' command
# is +taskrb+ (<tt>taskrb --help</tt>); Task::Web is a Rack page over the same stores.
module Task
  # A task: a unit of work with a list (+task_list+), an +id+ within it and +data+ (a Hash
  # that JSON can hold). Include Task::Task in a class to make it a task class; its +execute+
  # does the work.
  #
  #   class FetchFile
  #     include Task::Task
  #     data_attr_reader :filename              # task.filename reads data[:filename]
  #
  #     def execute(opts = {})
  #       download(filename)
  #     end
  #   end
  #
  #   task = FetchFile.create(task_list: "files", filename: "a.txt")  # built and saved
  #   FetchJob.perform_async(task.as_json)                             # handed to a worker
  #
  #   # In the worker:
  #   task = Task::Task.from_hash(argument)
  #   task.execute
  #   task.complete                                                     # deleted: done
  #
  # == Building and storing
  #
  # Every task class has build and create (Task::Task.build, Task::Task.create) and
  # data_attr_reader; #save stores a task (an upsert, with an optional +ttl+), #complete
  # deletes it. Stores are reached through Task::Task.interface, whose adapter
  # Task::DataInterface::Interface.adapter_builder makes.
  #
  # == Finding
  #
  # Task::Task.find (one task), Task::Task.all (a list, lazily, in id order), Task::Task.count,
  # Task::Task.lists and Task::Task.older_than (what a recovery job should take); #saved_at
  # tells when a task read back was written.
  #
  # == Handing tasks to jobs
  #
  # #as_json and #to_json give the JSON-native form (String keys, what Sidekiq's strict
  # arguments accept); Task::Task.from_hash and Task::Task.from_json make the task again, in
  # any process. #as_hash is task_rb's form, with Symbol keys.
  #
  # == Claims and recovery
  #
  # A worker can hold a task for a while (#claim, #renew, #release), so that a recovery job
  # does not run it meanwhile; #fail_attempt records a failure. Task::Task.claim_each is the
  # recovery loop: it claims each task of a list and runs the block on those it won,
  # completing them. A task whose attempts are used up is dead (Task::Task.dead) until
  # #retry!. Claims live beside the tasks: code that uses only task_rb's calls never sees them.
  module Task
    ##
    # :singleton-method: build
    # :call-seq: TaskClass.build(task_list:, id: nil, **data) -> task
    #
    # Called on a task class (<tt>FetchFile.build(task_list: "files", filename: "a.txt")</tt>):
    # a new task of that class, not saved. Every option but +task_list+ and +id+ goes into its
    # data; without +id+ it gets a random hex one. The Hash given is left as it is.

    ##
    # :singleton-method: create
    # :call-seq: TaskClass.create(task_list:, id: nil, **data) -> task
    #
    # Called on a task class: build, then save. Returns the saved task.

    ##
    # :method: task_list
    # :call-seq: task_list -> String or nil
    #
    # The list the task belongs to (a String; Symbols, Integers and Floats given to the writer
    # or to new are stored as their to_s).

    ##
    # :method: task_list=
    # :call-seq: task_list = list
    #
    # Sets the list (coerced as task_list is).

    ##
    # :method: id
    # :call-seq: id -> String or nil
    #
    # The task's id within its list; build gives a random hex one when none is given.

    ##
    # :method: id=
    # :call-seq: id = id
    #
    # Sets the id (coerced as id is).

    ##
    # :method: data
    # :call-seq: data -> Hash
    #
    # The task's data: a Hash with Symbol keys at the top level, as task_rb gave it.

    ##
    # :method: data=
    # :call-seq: data = hash
    #
    # Replaces the data; a non-Hash raises ArgumentError.

    ##
    # :method: attributes
    # :call-seq: attributes -> Hash
    #
    # <tt>{ task_list:, id:, data: }</tt>.

    ##
    # :method: as_hash
    # :call-seq: as_hash -> Hash
    #
    # The task's wire form, task_rb's: <tt>{ task_list:, id:, data:, type: }</tt> with
    # Symbol keys; Task::Task.from_hash takes it back. For job arguments use as_json.

    ##
    # :method: save
    # :call-seq: save(ttl: nil) -> nil
    #
    # Stores the task through Task::Task.interface (an upsert: saving again is safe). With
    # +ttl+ (seconds) the stored task disappears on its own after that long; a +ttl+ above
    # 630,720,000 (20 years) or ending after 2038-01-19T03:14:06Z (Cassandra's limits, kept by
    # every store) raises ArgumentError before anything is sent. Raises a Task::Error subclass naming the list and id when the store cannot take it;
    # Task::Error::Timeout means the outcome is unknown.

    ##
    # :method: complete
    # :call-seq: complete -> nil
    #
    # Deletes the task (and its claim) from the store: it is done. Completing a task that is
    # not stored is fine.

    ##
    # :method: execute
    # :call-seq: execute(opts = {})
    #
    # The work; task classes override it. The default raises NotImplementedError.

    # What including Task::Task adds to a task class: build and create (documented as
    # Task::Task.build and Task::Task.create) and data_attr_reader.
    module ClassMethods
      ##
      # :method: build
      # :call-seq: build(task_list:, id: nil, **data) -> task
      #
      # A new task of this class: see Task::Task.build.

      ##
      # :method: create
      # :call-seq: create(task_list:, id: nil, **data) -> task
      #
      # build, then save: see Task::Task.create.
    end

    ##
    # :singleton-method: find
    # :call-seq: find(task_list, id) -> task or nil
    #
    # The stored task, as an instance of the class named by its type; nil when none is stored.

    ##
    # :singleton-method: all
    # :call-seq: all(task_list, on_bad_row: :raise, after: nil) -> Enumerator::Lazy
    #
    # Every task of the list, lazily, in id order, a page at a time. +after+: only ids after
    # it (to resume). A row that cannot become a task raises Task::Error::BadData unless
    # +on_bad_row+ is :skip or a callable taking (row, error).

    ##
    # :singleton-method: from_hash
    # :call-seq: from_hash(hash) -> task
    #
    # The task an as_hash or as_json form describes (Symbol or String keys).

    ##
    # :singleton-method: from_json
    # :call-seq: from_json(text) -> task
    #
    # The task of a JSON text (task.to_json): what <tt>from_hash(JSON.parse(text))</tt>
    # gives, parsed by the extension. Text that is not JSON raises JSON::ParserError.

    ##
    # :singleton-method: interface
    # :call-seq: interface -> Task::DataInterface::Interface
    #
    # The interface tasks are saved, found and completed through; built on first use with
    # Interface.adapter_builder.

    ##
    # :singleton-method: interface=
    # :call-seq: interface = interface_or_nil
    #
    # Replaces it (nil: build a new one on next use).
  end

  module DataInterface
    class Interface
      ##
      # :singleton-method: adapter_builder
      # :call-seq: adapter_builder -> callable or nil
      #
      # What makes the adapter of an Interface built without one: called with the
      # Interface's options.

      ##
      # :singleton-method: adapter_builder=
      # :call-seq: adapter_builder = callable
      #
      # Sets it; nil restores the default: the configured store (Task.configure, config/task.yml,
      # the environment; Cassandra unless configured), with Interface.new's options over it.

      ##
      # :method: adapter
      # :call-seq: adapter -> adapter
      #
      # The adapter every call goes to.

      ##
      # :method: store
      # :call-seq: store(task, ttl: nil) -> nil
      #
      # Saves through the adapter.

      ##
      # :method: find
      # :call-seq: find(task_list, id) -> task or nil

      ##
      # :method: all
      # :call-seq: all(task_list, on_bad_row: :raise, after: nil) -> Enumerable

      ##
      # :method: delete
      # :call-seq: delete(task_list, id) -> nil
    end

    # What every store's adapter class shares (lib/task/adapters/ has each one's own).
    class NativeAdapter
      ##
      # :method: store
      # :call-seq: store(task, ttl: nil) -> nil
      #
      # Upserts one task.

      ##
      # :method: find
      # :call-seq: find(task_list, id) -> task or nil

      ##
      # :method: all
      # :call-seq: all(task_list, on_bad_row: :raise, after: nil) -> Enumerable
      #
      # A scan object: each yields tasks a page at a time (Task::Task.all makes it lazy).

      ##
      # :method: delete
      # :call-seq: delete(task_list, id) -> nil

      ##
      # :method: delete_list
      # :call-seq: delete_list(task_list) -> nil
      #
      # Deletes every task of the list (one partition delete on Cassandra).

      ##
      # :method: store_many
      # :call-seq: store_many(tasks, concurrency: 64, batched: true) -> Integer
      #
      # Stores them all, at most +concurrency+ requests in flight; returns how many. Tasks of
      # one list go as unlogged batches (at most 40 KiB of values or 1,000 rows each); with
      # <tt>batched: false</tt>, one request per task. A failure raises
      # Task::Error::BulkFailure whose #failures names each task not written (every task of a
      # failed batch).

      ##
      # :method: delete_many
      # :call-seq: delete_many(tasks_or_pairs, concurrency: 64, batched: true) -> Integer
      #
      # Completes them all (tasks, or [task_list, id] pairs), as store_many.

      ##
      # :method: rows
      # :call-seq: rows(task_list) -> Enumerable
      #
      # The stored rows as they are: <tt>{ task_list:, id:, type:, data: }</tt>, data the
      # JSON text (nil for a null column).

      ##
      # :method: store_row
      # :call-seq: store_row(task_list:, id:, type:, data:) -> nil
      #
      # Writes one row exactly as given (data is JSON text, not checked).

      ##
      # :method: count
      # :call-seq: count(task_list) -> Integer
      #
      # How many tasks the list holds, counted a page at a time.

      ##
      # :method: lists
      # :call-seq: lists -> Enumerator::Lazy
      #
      # The names of the lists that hold tasks, a page at a time.

      ##
      # :method: claim_info
      # :call-seq: claim_info(task_list, id) -> Hash or nil
      #
      # One task's claim state, <tt>{ id:, owner:, attempts:, last_error:, expires_in: }</tt>
      # (owner and expires_in nil when no live claim is held), or nil when it has none. Reads
      # that task's claim alone, not the list's.

      ##
      # :method: options
      # :call-seq: options -> Hash
      #
      # The adapter's settings as new takes them (the password left out).

      ##
      # :method: log_source
      # :call-seq: log_source -> String or nil
      #
      # What this adapter's log lines name as their source (table@hosts); nil for memory.
    end
  end
end
