import Core
import LambdaRuntime
import Logging

/// What a route handler gets: the request, the path's parameters, the invocation, and the user
/// behind the request's token (verified on first use).
public struct RouteContext {
    public let request: WebRequest
    public let parameters: [String: String]
    public let lambda: LambdaContext
    /// Unix seconds when the request arrived.
    public let now: Int64
    let verifier: JWTVerifier?

    /// The user of the `Authorization: Bearer` token.
    /// - Throws: 401 without a token or when it does not verify (the reason is kept short and names no token).
    public func user() throws(APIError) -> VerifiedToken {
        guard let verifier else { throw APIError(status: 500, code: "not_configured", message: "this function has no token verifier") }
        guard let token = request.bearerToken else { throw .unauthorized("send Authorization: Bearer <the user's access token>") }
        do {
            return try verifier.verify(token, now: now)
        } catch {
            throw .unauthorized(error.description)
        }
    }

    /// `organizationID` if the user's token grants it, else 403.
    public func organization(_ organizationID: Int64, of user: VerifiedToken) throws(APIError) -> Int64 {
        guard user.grants(organizationID) else {
            throw .forbidden("the token does not grant organisation \(organizationID)")
        }
        return organizationID
    }

    /// A path parameter.
    public func parameter(_ name: String) -> String { parameters[name] ?? "" }
}

/// One route: a method and a path pattern whose `{name}` segments become parameters.
public struct Route {
    public let method: String
    public let pattern: String
    /// A short name for logs and metrics (the pattern, without values).
    public var name: String { method + " " + pattern }
    let segments: [Substring]
    let handler: (RouteContext) throws -> WebResponse

    public init(_ method: String, _ pattern: String, _ handler: @escaping (RouteContext) throws -> WebResponse) {
        self.method = method
        self.pattern = pattern
        self.segments = pattern.split(separator: "/")
        self.handler = handler
    }

    func match(_ path: String) -> [String: String]? {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        guard parts.count == segments.count else { return nil }
        var parameters: [String: String] = [:]
        for (segment, part) in zip(segments, parts) {
            if segment.hasPrefix("{") {
                guard !part.isEmpty else { return nil }
                parameters[String(segment.dropFirst().dropLast())] = String(part)
            } else if segment != part {
                return nil
            }
        }
        return parameters
    }
}

/// A Lambda function behind a function URL: routes, CORS for one origin, JSON errors, one log
/// line and one EMF line per request. Every answer, errors included, is a response: the
/// invocation itself fails only when the runtime cannot be answered at all.
public struct WebFunction: LambdaByteHandler {
    public let name: String
    public let routes: [Route]
    /// The web app's origin, allowed by CORS (`METERLAKE_FRONTEND_ORIGIN`).
    public let allowedOrigin: String?
    public let verifier: JWTVerifier?
    public let maximumBodyBytes: Int
    let clock: @Sendable () -> Int64

    public init(name: String, routes: [Route], allowedOrigin: String?, verifier: JWTVerifier?, maximumBodyBytes: Int = 64 * 1024,
                clock: @escaping @Sendable () -> Int64 = WallClock.milliseconds) {
        self.name = name
        self.routes = routes
        self.allowedOrigin = allowedOrigin
        self.verifier = verifier
        self.maximumBodyBytes = maximumBodyBytes
        self.clock = clock
    }

    public func handle(_ event: [UInt8], context: LambdaContext) throws -> [UInt8] {
        let started = clock()
        var routeName = "unmatched"
        var request: WebRequest?
        var response: WebResponse
        do {
            let parsed = try WebRequest(event: event, maximumBodyBytes: maximumBodyBytes)
            request = parsed
            (response, routeName) = try dispatch(parsed, context: context, now: started / 1000)
        } catch let error as APIError {
            response = error.response(requestID: context.requestID)
        } catch {
            // A bug or an outage, not the caller's fault: logged whole, answered without detail.
            let report = ErrorReport(error)
            context.logger.error("request failed", metadata: ["errorType": .string(report.type), "errorMessage": .string(report.message), "route": .string(routeName)])
            response = APIError(status: 500, code: "internal", message: "the request failed on our side; quote the request id").response(requestID: context.requestID)
        }
        if let origin = request?.header("origin"), origin == allowedOrigin {
            response.headers["access-control-allow-origin"] = origin
            response.headers["vary"] = "Origin"
        }
        response.headers["cache-control"] = response.headers["cache-control"] ?? "no-store"
        response.headers["x-request-id"] = context.requestID
        response.headers["x-content-type-options"] = "nosniff"
        let elapsed = clock() - started
        var logMetadata: Logger.Metadata = ["route": .string(routeName), "status": .stringConvertible(response.status), "durationMs": .stringConvertible(elapsed)]
        if let method = request?.method { logMetadata["method"] = .string(method) }
        context.logger.info("request", metadata: logMetadata)
        var metrics = EmbeddedMetrics(dimensionSets: [["Function"], ["Function", "Route"]])
        metrics.dimension("Function", name)
        metrics.dimension("Route", routeName)
        metrics.metric("Requests", 1)
        metrics.metric("ClientErrors", response.status >= 400 && response.status < 500 ? 1 : 0)
        metrics.metric("ServerErrors", response.status >= 500 ? 1 : 0)
        metrics.metric("Latency", elapsed, unit: .milliseconds)
        metrics.property("requestId", context.requestID)
        metrics.emit(timestamp: started, to: context.logOutput)
        return response.encoded
    }

    private func dispatch(_ request: WebRequest, context: LambdaContext, now: Int64) throws -> (WebResponse, String) {
        if request.method == "OPTIONS" {
            return (preflight(request), "OPTIONS")
        }
        var allowed: [String] = []
        for route in routes {
            guard let parameters = route.match(request.path) else { continue }
            // HEAD is not GET here: a link checker's HEAD must not spend a state or redeem a code.
            guard route.method == request.method else {
                allowed.append(route.method)
                continue
            }
            let routeContext = RouteContext(request: request, parameters: parameters, lambda: context, now: now, verifier: verifier)
            do {
                return (try route.handler(routeContext), route.name)
            } catch let error as APIError {
                return (error.response(requestID: context.requestID), route.name)
            }
        }
        if !allowed.isEmpty {
            throw APIError(status: 405, code: "method_not_allowed", message: "\(request.method) is not allowed on \(request.path.prefix(100))",
                           headers: ["allow": allowed.joined(separator: ", ")])
        }
        throw APIError.notFound("no route \(request.method) \(request.path.prefix(100))")
    }

    /// A CORS preflight: allowed for the configured origin only.
    private func preflight(_ request: WebRequest) -> WebResponse {
        guard let origin = request.header("origin"), origin == allowedOrigin else {
            return WebResponse(status: 403, headers: ["content-type": "text/plain"], body: Array("origin not allowed".utf8))
        }
        let methods = Set(routes.filter { $0.match(request.path) != nil }.map(\.method))
        return WebResponse(status: 204, headers: [
            "access-control-allow-methods": (methods.isEmpty ? ["GET", "POST"] : methods.sorted()).joined(separator: ", "),
            "access-control-allow-headers": "authorization, content-type",
            "access-control-max-age": "600",
        ])
    }
}
