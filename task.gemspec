# frozen_string_literal: true

require_relative "lib/task/version"

Gem::Specification.new do |spec|
  spec.name = "task"
  spec.version = Task::VERSION
  spec.summary = "Generate, track and serialize units of work for at-least-once completion"
  spec.description = <<~TEXT
    Task builds, stores and serializes tasks so that background jobs (Resque, Sidekiq) get
    at-least-once completion. A native (Rust) drop-in replacement for task_rb 0.4.0 that
    reads and writes the same Cassandra table.
  TEXT
  spec.license = "MIT"
  spec.authors = ["The task developers"]
  spec.required_ruby_version = ">= 3.0"

  spec.files = Dir[
    "lib/**/*.rb",
    "exe/taskrb",
    "sig/**/*.rbs",
    "ext/task_native/extconf.rb",
    "ext/*/Cargo.toml",
    "ext/*/src/**/*.rs",
    "Cargo.toml",
    "Cargo.lock",
    "README.md",
    "CHANGELOG.md",
    "LICENSE.txt"
  ]
  spec.metadata = { "rubygems_mfa_required" => "true" }
  spec.require_paths = ["lib"]
  spec.bindir = "exe"
  spec.executables = ["taskrb"]
  # Compiled with cargo on the installing machine; `rake native` builds a precompiled gem that
  # needs none of this.
  spec.extensions = ["ext/task_native/extconf.rb"]
  spec.requirements = ["Rust 1.88 or newer (rustup), libclang and Ruby's headers, to build the native extension"]
end
