# frozen_string_literal: true

module Task
  module DataInterface
    # The SQLite store's adapter class (ext/task_native/src/adapter/sqlite.rs defines it, with
    # its options): one file on this host, shared by every thread and process that opens it,
    # with no server. The Ruby side adds inspect, the taskrb command's flag and the fork hook.
    class SqliteAdapter
      # How the taskrb command opens it (see Task::CLI.store_flags): `taskrb --sqlite PATH lists`
      # or TASK_SQLITE_PATH=PATH.
      def self.cli_store
        { flag: "--sqlite PATH", help: "--sqlite PATH (or TASK_SQLITE_PATH)", env: "TASK_SQLITE_PATH",
          across_processes: true, open: ->(path) { new(path: path) },
          describe: ->(adapter) { "SQLite #{adapter.describe[:sqlite_version]}, file #{adapter.options[:path]}" },
          schema: lambda do |adapter|
            "the SQLite store makes its tables itself when it opens the file: #{adapter.options[:path]} has them"
          end }
      end

      # The file and its lock-wait deadline.
      def inspect
        o = options
        "#<#{self.class.name} path=#{o[:path]} synchronous=#{o[:synchronous]} retry_deadline=#{o[:retry_deadline]}>"
      end

      # Closes every SQLite adapter's idle connections just before this process forks, so that
      # the child starts with no connection to the file (SQLite's rule). A child that finds
      # its parent's connections anyway never uses them: it opens its own.
      module BeforeFork
        def _fork
          SqliteAdapter.close_idle_connections
          super
        end
      end
      Process.singleton_class.prepend(BeforeFork) if Process.respond_to?(:_fork)

      ##
      # :singleton-method: new
      # :call-seq: new(path:, retry_deadline: 5, page_size: 1000, max_attempts: 25, default_ttl: nil, synchronous: :full) -> adapter
      #
      # Opens the SQLite file at +path+ now, making it (with its tables) when it is absent or
      # empty. A file that is not a task database, or one of a newer schema version, raises
      # ArgumentError naming it and is left as it was. +retry_deadline+: the longest a call waits
      # for another connection's write lock before Task::Error::Timeout. +synchronous+:
      # :full (every commit synced) or :normal (synced at checkpoints). An unknown option
      # raises ArgumentError naming it.

      ##
      # :method: describe
      # :call-seq: describe -> Hash
      #
      # <tt>path</tt>, <tt>sqlite_version</tt> (the library compiled in),
      # <tt>schema_version</tt>, <tt>journal_mode</tt> ("wal"), <tt>synchronous</tt>
      # ("FULL" or "NORMAL") and <tt>bytes</tt> (the database file's size).

      ##
      # :method: integrity_check
      # :call-seq: integrity_check -> Array of String
      #
      # <tt>PRAGMA integrity_check</tt>: the problems SQLite finds, empty when the file is sound.

      ##
      # :method: create_schema
      # :call-seq: create_schema -> nil
      #
      # Makes the tables when missing (new already did).

      ##
      # :singleton-method: close_idle_connections
      # :call-seq: close_idle_connections -> Integer
      #
      # Closes the idle connections of every SQLite adapter of this process (done before each
      # fork); returns how many stores it looked at.
    end
  end
end
