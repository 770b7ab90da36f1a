# frozen_string_literal: true

require "erb"
require "json"
require "openssl"
require "rack"
require "securerandom"
require "time"
require "task"
require "task/display"

module Task
  # A Rack app for operators: the lists with their counts and oldest task, one list a page at
  # a time, one task in full, the stale, claimed and dead tasks, and the repairs (retry,
  # release, complete) as POSTs with a CSRF token. It has no login of its own: mount it behind
  # the application's authentication, as Sidekiq::Web is.
  #
  #   # config.ru
  #   run Task::Web.new
  #   # Rails routes, behind authentication
  #   mount Task::Web.new(read_only: true), at: "/tasks"
  #
  # Every value from the store is escaped, control and bidi characters shown as escapes
  # (Task::Display); no action is taken by GET; pages are served with a Content-Security-Policy
  # that allows no script at all (the pages need none) and only the app's own stylesheet. One
  # page view reads at most ROW_BUDGET rows whatever the store holds. Actions carry a CSRF
  # token signed with the app's secret and are refused from another origin.
  class Web
    # Tasks on a page.
    PAGE = 50
    # The index shows at most this many lists.
    LISTS = 500
    # The most rows one page view reads from the store (list names, tasks, rows that cannot
    # become tasks), or one page of the adapter (its page_size) when that is larger. Counts
    # and ages that would need more are shown as "at least"; the stale view stops there and
    # offers to continue.
    ROW_BUDGET = 50_000
    CSRF_COOKIE = "task_web_csrf"
    ACTIONS = %w[retry release complete].freeze
    CSP = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; " \
          "frame-ancestors 'none'; base-uri 'none'"
    CSS = <<~CSS
      body { font: 15px/1.4 system-ui, sans-serif; margin: 0; color: #1d1d1f; background: #fafafa; }
      header { background: #243b53; color: #fff; padding: .6em 1em; }
      header a { color: #fff; text-decoration: none; font-weight: 600; }
      main { padding: 1em; max-width: 70em; }
      table { border-collapse: collapse; width: 100%; background: #fff; }
      th, td { text-align: left; padding: .35em .5em; border-bottom: 1px solid #ddd; vertical-align: top;
               overflow-wrap: anywhere; }
      pre { background: #fff; border: 1px solid #ddd; padding: .6em; white-space: pre-wrap; overflow-wrap: anywhere; }
      nav a, .actions form { margin-right: .8em; display: inline-block; }
      .notice { background: #e3f9e5; padding: .5em; } .error { background: #ffe3e3; padding: .5em; }
      button { font: inherit; padding: .3em .8em; }
      dl { display: grid; grid-template-columns: max-content 1fr; gap: .2em 1em; }
      @media (max-width: 600px) { .wide { display: none; } main { padding: .5em; } }
    CSS

    # +read_only+: show, never change. +adapter+: the store to show (default: the one
    # Task::Task.interface uses at each request). +secret+: the key CSRF tokens and notices
    # are signed with (at least 16 bytes); default ENV["TASK_WEB_SECRET"], else one made for
    # this app object (give one when several processes serve the app without sharing it).
    def initialize(read_only: false, adapter: nil, secret: ENV.fetch("TASK_WEB_SECRET", nil))
      @read_only = read_only
      @adapter = adapter
      @guard = Guard.new(secret)
    end

    def call(env)
      return [200, { "content-type" => "text/css", "cache-control" => "max-age=3600" }, [CSS]] if env["PATH_INFO"] == "/task.css"

      Handler.new(Rack::Request.new(env), read_only: @read_only, adapter: @adapter, guard: @guard).respond
    end
  end
end

require_relative "web/guard"
require_relative "web/reader"
require_relative "web/html"
require_relative "web/handler"
