#if canImport(Glibc)
import Glibc
#endif

/// Seconds `body` takes on the monotonic clock.
public func seconds(_ body: () throws -> Void) rethrows -> Double {
    var start = timespec()
    clock_gettime(CLOCK_MONOTONIC, &start)
    try body()
    var end = timespec()
    clock_gettime(CLOCK_MONOTONIC, &end)
    return Double(end.tv_sec - start.tv_sec) + Double(end.tv_nsec - start.tv_nsec) / 1e9
}

/// The fastest of `runs`: the least disturbed measurement on a noisy machine.
public func best(_ runs: Int = 3, _ body: () throws -> Void) rethrows -> Double {
    var fastest = Double.infinity
    for _ in 0..<runs { fastest = min(fastest, try seconds(body)) }
    return fastest
}
