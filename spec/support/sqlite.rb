# frozen_string_literal: true

require "tmpdir"
require "fileutils"

# SQLite files for specs: each under one directory made for this run, removed at exit.
module SqliteFiles
  DIR = Dir.mktmpdir("task_sqlite_spec")
  at_exit { FileUtils.remove_entry(DIR) if Process.pid == SqliteFiles::OWNER && File.directory?(DIR) }
  OWNER = Process.pid

  module_function

  # A path no other example uses (the file is made by the adapter).
  def fresh_path(name = "tasks")
    File.join(DIR, "#{name}-#{SecureRandom.hex(6)}.db")
  end
end

module SpecHelpers
  # A SqliteAdapter on `path` (a fresh file unless given).
  def sqlite_adapter(path: SqliteFiles.fresh_path, **options)
    Task::DataInterface::SqliteAdapter.new(path: path, **options)
  end
end
