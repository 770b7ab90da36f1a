# frozen_string_literal: true

module Task
  class Web
    # What keeps another site from acting through an operator's browser, and outside links
    # from putting words on a page.
    #
    # A CSRF token is a random nonce and an HMAC of it under the app's key: a page on the same
    # site (another port of the host, a sibling subdomain) can plant a cookie, but not one the
    # app signed. A POST is taken when its form's token is signed and equals one of the
    # request's token cookies, and when its Origin (if sent) is the app's own and its
    # Sec-Fetch-Site (if sent) says same-origin. The cookie stays HttpOnly and SameSite=Strict.
    # Notices after an action are carried in the redirect with an HMAC of their text.
    class Guard
      def initialize(secret)
        @key = if secret.nil?
                 SecureRandom.bytes(32)
               else
                 text = secret.to_s
                 if text.bytesize < 16
                   raise ArgumentError, "Task::Web's secret: must be at least 16 bytes (got #{text.bytesize})"
                 end

                 OpenSSL::HMAC.digest("SHA256", text, "task web")
               end
      end

      def new_token
        nonce = SecureRandom.urlsafe_base64(18)
        "#{nonce}.#{mac("csrf", nonce)}"
      end

      # Whether the app signed this token (with this key).
      def signed?(token)
        nonce, tag = token.to_s.split(".", 2)
        !nonce.to_s.empty? && !tag.to_s.empty? && Rack::Utils.secure_compare(mac("csrf", nonce), tag)
      end

      # The signed tokens among the request's cookies named CSRF_COOKIE (a cookie planted for
      # a longer path is sent first, and may sit beside the app's own).
      def cookie_tokens(request)
        request.get_header("HTTP_COOKIE").to_s.split(/;\s*/).filter_map do |pair|
          name, value = pair.split("=", 2)
          next unless name&.strip == CSRF_COOKIE && value

          token = Rack::Utils.unescape(value.strip)
          token if signed?(token)
        rescue ArgumentError
          nil
        end
      end

      # Why this POST is refused, or nil when it may act.
      def refusal(request, form_token)
        site = request.get_header("HTTP_SEC_FETCH_SITE")
        if site && !%w[same-origin none].include?(site)
          return "refused: the form was sent from another site (Sec-Fetch-Site: #{site})"
        end

        origin = request.get_header("HTTP_ORIGIN")
        if origin && origin != request.base_url
          return "refused: the form was sent from #{origin}, not from #{request.base_url}"
        end

        token = form_token.to_s
        ok = !token.empty? && signed?(token) &&
             cookie_tokens(request).any? { |c| Rack::Utils.secure_compare(c, token) }
        ok ? nil : "refused: the form's CSRF token is missing or does not match (reload the page and try again)"
      end

      def notice_tag(text)
        mac("notice", text)
      end

      def notice?(text, tag)
        !tag.to_s.empty? && Rack::Utils.secure_compare(mac("notice", text), tag.to_s)
      end

      private

      def mac(purpose, text)
        [OpenSSL::HMAC.digest("SHA256", @key, "#{purpose}\0#{text}")].pack("m0").tr("+/", "-_").delete("=")
      end
    end
  end
end
