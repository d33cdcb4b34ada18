// swift-tools-version: 6.0
import PackageDescription

/// Settings every Swift target shares.
let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "meterlake",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "meterlake", targets: ["meterlake"]),
        .executable(name: "validator", targets: ["validator"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        // MARK: - C boundaries: one system library each, wrapped by exactly one Swift module.
        .systemLibrary(
            name: "CCurl", path: "Shared/CCurl", pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"]), .yum(["libcurl-devel"])]),
        .systemLibrary(
            name: "CZlib", path: "Shared/CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"]), .yum(["zlib-devel"])]),
        .systemLibrary(
            name: "CZstd", path: "Shared/CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"]), .yum(["libzstd-devel"])]),
        .systemLibrary(
            name: "CLibPQ", path: "Shared/CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"]), .yum(["libpq-devel"])]),
        .systemLibrary(
            name: "COpenSSL", path: "Shared/COpenSSL", pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"]), .yum(["openssl-devel"])]),

        // MARK: - Adapters (the only modules that import a C module)
        .target(
            name: "HTTPClient", dependencies: ["CCurl"], path: "Shared/HTTPClient",
            swiftSettings: strict),
        .target(
            name: "Postgres", dependencies: ["CLibPQ"], path: "Shared/Postgres", swiftSettings: strict),
        .target(
            name: "Compression", dependencies: ["CZlib", "CZstd"], path: "Shared/Compression", swiftSettings: strict),
        .target(
            name: "Cryptography", dependencies: ["COpenSSL"], path: "Shared/Cryptography",
            swiftSettings: strict),

        // MARK: - The shared core
        // Pure Swift Parquet reader (zlib and libzstd reach it only through Compression).
        .target(name: "Parquet", dependencies: ["Compression"], path: "Shared/Parquet", swiftSettings: strict),
        .target(
            name: "Core",
            dependencies: ["Parquet", "HTTPClient", "Cryptography", "Compression", "Postgres", .product(name: "Logging", package: "swift-log")],
            path: "Shared/Core", swiftSettings: strict),

        // MARK: - Lambda functions (one executable each; build.sh bundles them as bootstrap)
        .executableTarget(
            name: "validator", dependencies: ["Core"], path: "Functions/validator", swiftSettings: strict),

        // MARK: - Operator tools
        .executableTarget(
            name: "meterlake", dependencies: ["Core", "Postgres"], path: "Tools/meterlake",
            swiftSettings: strict),

        // MARK: - Benchmarks (release builds; see Benchmarks/run.sh)
        .target(name: "BenchmarkSupport", path: "Benchmarks/Support", swiftSettings: strict),
        .executableTarget(
            name: "reader-benchmark", dependencies: ["BenchmarkSupport", "Core"], path: "Benchmarks/ReaderBenchmark",
            swiftSettings: strict),
        .executableTarget(
            name: "loader-benchmark", dependencies: ["BenchmarkSupport", "Core", "Postgres"], path: "Benchmarks/LoaderBenchmark",
            swiftSettings: strict),
        .executableTarget(
            name: "parquet-benchmark", dependencies: ["BenchmarkSupport", "Core", "Parquet"], path: "Benchmarks/ParquetBenchmark",
            swiftSettings: strict),
        .executableTarget(
            name: "s3-benchmark", dependencies: ["BenchmarkSupport", "Core", "HTTPClient"], path: "Benchmarks/S3Benchmark", swiftSettings: strict),

        // MARK: - Tests
        .target(
            name: "TestSupport", dependencies: ["Core", "HTTPClient", "Postgres"], path: "Tests/TestSupport",
            swiftSettings: strict),
        // A minimal function binary that the runtime tests drive through a local Runtime API.
        .executableTarget(
            name: "runtime-probe", dependencies: ["Core"], path: "Tests/RuntimeProbe",
            swiftSettings: strict),
        .testTarget(
            name: "CoreTests", dependencies: ["Core", "Cryptography", "TestSupport"], path: "Tests/CoreTests",
            exclude: ["Fixtures"], swiftSettings: strict),
        .testTarget(
            name: "ParquetTests", dependencies: ["Parquet", "TestSupport"], path: "Tests/ParquetTests",
            exclude: ["make_corpus.py"], swiftSettings: strict),
        .testTarget(
            name: "IntegrationTests", dependencies: ["Core", "HTTPClient", "Postgres", "Cryptography", "TestSupport"],
            path: "Tests/IntegrationTests", swiftSettings: strict),
    ]
)
