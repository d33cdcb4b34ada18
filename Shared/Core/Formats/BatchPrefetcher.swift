import Dispatch
import Synchronization

/// Reads and checks a file's next batches on another thread while the caller loads the current
/// one into the database: parsing and COPY overlap instead of taking turns.
///
/// At most `depth` batches wait, so memory stays bounded. The reader is opened and used by the
/// producer thread alone (the reason for `@unchecked Sendable`), so opening it (reading a whole
/// JSON document, a Parquet footer) also overlaps with the caller's work; an error opening it
/// comes out of the first ``next()``. Call ``cancel()`` when stopping early; `deinit` does too.
public final class BatchPrefetcher: @unchecked Sendable {
    private let open: () throws(FileFormatError) -> ReadingFileReader
    private let maximumRows: Int
    private let ready = DispatchSemaphore(value: 0)
    private let room: DispatchSemaphore
    private let state = Mutex(State())
    private let finished = DispatchSemaphore(value: 0)

    private struct State {
        var queue: [Result<ReadingBatch?, FileFormatError>] = []
        var cancelled = false
        var done = false
    }

    /// - Parameter open: Makes the reader, on the producer thread.
    public init(maximumRows: Int = 10_000, depth: Int = 2, open: @escaping () throws(FileFormatError) -> ReadingFileReader) {
        self.open = open
        self.maximumRows = maximumRows
        // Start at 0 and add the room by signalling: libdispatch traps when a semaphore is freed
        // below its initial value, which a cancelled producer's unmatched waits would leave.
        self.room = DispatchSemaphore(value: 0)
        for _ in 0..<depth { room.signal() }
        DispatchQueue.global().async { [self] in produce() }
    }

    deinit { cancel() }

    private func produce() {
        defer { finished.signal() }
        var reader: ReadingFileReader?
        while true {
            room.wait()
            if state.withLock({ $0.cancelled }) { return }
            let result: Result<ReadingBatch?, FileFormatError>
            do {
                if reader == nil { reader = try open() }
                result = .success(try reader!.nextBatch(maximumRows: maximumRows))
            } catch {
                result = .failure(error)
            }
            let last: Bool
            switch result {
            case .success(let batch): last = batch == nil
            case .failure: last = true
            }
            state.withLock { $0.queue.append(result) }
            ready.signal()
            if last { return }
        }
    }

    /// The next batch, `nil` at the end, or the file's structural error.
    public func next() throws(FileFormatError) -> ReadingBatch? {
        if state.withLock({ $0.done }) { return nil }
        ready.wait()
        let result = state.withLock { $0.queue.removeFirst() }
        room.signal()
        switch result {
        case .success(let batch):
            if batch == nil { state.withLock { $0.done = true } }
            return batch
        case .failure(let error):
            state.withLock { $0.done = true }
            throw error
        }
    }

    /// Stops the producer after the batch it is reading, and waits for it to leave.
    public func cancel() {
        let stop = state.withLock { state -> Bool in
            guard !state.cancelled else { return false }
            state.cancelled = true
            return true
        }
        guard stop else { return }
        room.signal()
        finished.wait()
    }
}
