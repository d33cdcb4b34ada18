import Foundation
import Parquet
import Testing
import TestSupport

/// The corpus `make_corpus.py` writes with pyarrow (every codec, dictionary on and off, data
/// pages v1 and v2, several row groups, nulls, every timestamp form, decimals, zero rows, the
/// DELTA and BYTE_STREAM_SPLIT encodings, Snowflake-like files), generated once per test run.
enum Corpus {
    static let directory: URL = {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("meterlake-parquet-corpus-\(getpid())")
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("make_corpus.py").path
        do {
            let child = try ChildProcess("/usr/bin/env", arguments: ["python3", script, directory.path], environment: ProcessInfo.processInfo.environment)
            let status = try child.waitForExit(timeout: 300)
            precondition(status == 0, "make_corpus.py failed (pyarrow missing? Tests/run.sh installs it): \(child.standardError)")
        } catch {
            preconditionFailure("cannot run make_corpus.py: \(error)")
        }
        return directory
    }()

    static var names: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? [])
            .filter { $0.hasSuffix(".parquet") }.map { String($0.dropLast(".parquet".count)) }.sorted()
    }
}

@Suite struct CorpusTests {
    @Test func corpusIsComplete() {
        // A generator that silently wrote nothing must not make the comparison below vacuous.
        #expect(Corpus.names.count == 26, "files: \(Corpus.names)")
    }

    @Test(arguments: Corpus.names)
    func everyValueMatchesPyarrow(name: String) throws {
        let path = Corpus.directory.appendingPathComponent(name + ".parquet").path
        let expected = try JSONSerialization.jsonObject(with: Data(contentsOf: Corpus.directory.appendingPathComponent(name + ".expected.json"))) as! [String: Any]
        let file = try ParquetFile(input: try FileInput(path: path))
        #expect(file.rowCount == Int64(expected["rows"] as! Int))
        let columns = expected["columns"] as! [String: [Any]]
        #expect(Set(file.columns.map(\.name)) == Set(columns.keys))
        let actual = try Render.file(file)
        for (name, cells) in columns {
            let wanted = cells.map { $0 as? String }
            let got = actual[name] ?? []
            #expect(got.count == wanted.count, "column \(name)")
            if let row = zip(got, wanted).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset {
                Issue.record("column \(name), row \(row): read \(got[row] ?? "null"), pyarrow \(wanted[row] ?? "null")")
            }
        }
    }
}
