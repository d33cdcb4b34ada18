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
        .executable(name: "fetcher-solaredge", targets: ["fetcher-solaredge"]),
        .executable(name: "fetcher-goodwe", targets: ["fetcher-goodwe"]),
        .executable(name: "fetcher-enphase", targets: ["fetcher-enphase"]),
        .executable(name: "fetcher-sma", targets: ["fetcher-sma"]),
        .executable(name: "oauth-callback", targets: ["oauth-callback"]),
        .executable(name: "ingest-api", targets: ["ingest-api"]),
        .executable(name: "maintenance", targets: ["maintenance"]),
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

        // MARK: - The shared modules (one-way: Core <- LambdaRuntime, Lake, Store <- Validation; docs/architecture.md)
        // Pure Swift Parquet reader (zlib and libzstd reach it only through Compression).
        .target(name: "Parquet", dependencies: ["Compression"], path: "Shared/Parquet", swiftSettings: strict),
        // Pure: the canonical model, schema checks, readers, credential envelope, OAuth state, helpers.
        .target(
            name: "Core", dependencies: ["Parquet", "Compression", "Cryptography"], path: "Shared/Core", swiftSettings: strict),
        // The hand-written Lambda runtime loop, JSON logs, EMF metrics.
        .target(
            name: "LambdaRuntime", dependencies: ["Core", "HTTPClient", .product(name: "Logging", package: "swift-log")],
            path: "Shared/LambdaRuntime", swiftSettings: strict),
        // The lake: the ObjectStore port, S3 (SigV4) and local stores, the key layout, S3 events.
        .target(name: "Lake", dependencies: ["Core", "HTTPClient", "Cryptography"], path: "Shared/Lake", swiftSettings: strict),
        // PostgreSQL: migrations, the reading loader, partitions, repositories.
        .target(name: "Store", dependencies: ["Core", "Postgres", "Cryptography"], path: "Shared/Store", swiftSettings: strict),
        // Pure vendor knowledge: requests, answers, envelopes, and the transforms to canonical readings.
        .target(name: "Vendors", dependencies: ["Core"], path: "Shared/Vendors", swiftSettings: strict),
        // The fetch engine: credentials, sites, windows, quotas, vendor clients, raw objects.
        .target(
            name: "Fetching",
            dependencies: [
                "Core", "Vendors", "Lake", "LambdaRuntime", "Store", "Postgres", "HTTPClient", "Cryptography",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Shared/Fetching", swiftSettings: strict),
        // Functions behind a function URL: the request/response payload, routes, CORS, JSON errors, user tokens.
        .target(
            name: "WebAPI", dependencies: ["Core", "LambdaRuntime", .product(name: "Logging", package: "swift-log")], path: "Shared/WebAPI",
            swiftSettings: strict),
        // Trust: breach evidence archives, and replay of validated files.
        .target(
            name: "Trust", dependencies: ["Core", "Store", "Lake", "Postgres", "Compression", "Cryptography", "Validation"], path: "Shared/Trust",
            swiftSettings: strict),
        // The validator pipeline: event -> object -> rows -> database -> move.
        .target(
            name: "Validation",
            dependencies: ["Core", "Vendors", "Lake", "LambdaRuntime", "Store", "Postgres", .product(name: "Logging", package: "swift-log")],
            path: "Shared/Validation", swiftSettings: strict),

        // MARK: - Lambda functions (one executable each; build.sh bundles them as bootstrap)
        .executableTarget(
            name: "validator", dependencies: ["Validation", "Lake", "LambdaRuntime"], path: "Functions/validator",
            swiftSettings: strict),

        .executableTarget(
            name: "fetcher-solaredge", dependencies: ["Fetching", "Lake", "LambdaRuntime"], path: "Functions/fetcher-solaredge",
            swiftSettings: strict),
        .executableTarget(
            name: "fetcher-goodwe", dependencies: ["Fetching", "Lake", "LambdaRuntime"], path: "Functions/fetcher-goodwe",
            swiftSettings: strict),
        .executableTarget(
            name: "fetcher-enphase", dependencies: ["Fetching", "Lake", "LambdaRuntime"], path: "Functions/fetcher-enphase",
            swiftSettings: strict),
        .executableTarget(
            name: "fetcher-sma", dependencies: ["Fetching", "Lake", "LambdaRuntime"], path: "Functions/fetcher-sma",
            swiftSettings: strict),

        .executableTarget(
            name: "oauth-callback", dependencies: ["WebAPI", "Fetching", "Store", "Postgres", "Lake", "LambdaRuntime", "Core", "Cryptography"],
            path: "Functions/oauth-callback", swiftSettings: strict),

        .executableTarget(
            name: "ingest-api",
            dependencies: ["WebAPI", "Validation", "Fetching", "Vendors", "Store", "Postgres", "Lake", "LambdaRuntime", "Core", "Cryptography"],
            path: "Functions/ingest-api", swiftSettings: strict),

        .executableTarget(
            name: "maintenance", dependencies: ["Store", "Postgres", "LambdaRuntime", "Core", "Lake", "Trust", .product(name: "Logging", package: "swift-log")],
            path: "Functions/maintenance", swiftSettings: strict),

        // MARK: - Operator tools
        .executableTarget(
            name: "meterlake", dependencies: ["Core", "Lake", "LambdaRuntime", "Store", "Postgres", "Validation", "Vendors", "Trust"],
            path: "Tools/meterlake", swiftSettings: strict),

        // MARK: - Benchmarks (release builds; see Benchmarks/run.sh)
        .target(name: "BenchmarkSupport", path: "Benchmarks/Support", swiftSettings: strict),
        .executableTarget(
            name: "reader-benchmark", dependencies: ["BenchmarkSupport", "Core"], path: "Benchmarks/ReaderBenchmark",
            swiftSettings: strict),
        .executableTarget(
            name: "loader-benchmark", dependencies: ["BenchmarkSupport", "Core", "Store", "Postgres"], path: "Benchmarks/LoaderBenchmark",
            swiftSettings: strict),
        .executableTarget(
            name: "parquet-benchmark", dependencies: ["BenchmarkSupport", "Core", "Parquet"], path: "Benchmarks/ParquetBenchmark",
            swiftSettings: strict),
        .executableTarget(
            name: "s3-benchmark", dependencies: ["BenchmarkSupport", "Core", "Lake", "HTTPClient"], path: "Benchmarks/S3Benchmark",
            swiftSettings: strict),

        // MARK: - Tests (one target per module; IntegrationTests holds what needs PostgreSQL, moto or built binaries)
        .target(
            name: "TestSupport", dependencies: ["Core", "Store", "HTTPClient", "Postgres"], path: "Tests/TestSupport",
            swiftSettings: strict),
        // A minimal function binary that the runtime tests drive through a local Runtime API.
        .executableTarget(
            name: "runtime-probe", dependencies: ["Core", "LambdaRuntime"], path: "Tests/RuntimeProbe",
            swiftSettings: strict),
        .testTarget(
            name: "CoreTests", dependencies: ["Core", "Cryptography", "TestSupport"], path: "Tests/CoreTests", swiftSettings: strict),
        .testTarget(
            name: "LambdaRuntimeTests", dependencies: ["Core", "LambdaRuntime", "TestSupport"], path: "Tests/LambdaRuntimeTests",
            swiftSettings: strict),
        .testTarget(
            name: "LakeTests", dependencies: ["Core", "Lake", "Cryptography", "TestSupport"], path: "Tests/LakeTests",
            swiftSettings: strict),
        .testTarget(
            name: "ValidationTests", dependencies: ["Core", "LambdaRuntime", "Store", "Validation", "TestSupport"],
            path: "Tests/ValidationTests", swiftSettings: strict),
        .testTarget(
            name: "VendorsTests", dependencies: ["Core", "Lake", "Vendors", "TestSupport"], path: "Tests/VendorsTests", swiftSettings: strict),
        .testTarget(
            name: "ParquetTests", dependencies: ["Parquet", "TestSupport"], path: "Tests/ParquetTests",
            exclude: ["make_corpus.py"], swiftSettings: strict),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "Core", "Lake", "LambdaRuntime", "Store", "Validation", "Vendors", "Fetching", "HTTPClient", "Postgres", "Cryptography", "TestSupport",
                "Compression",
            ],
            path: "Tests/IntegrationTests", swiftSettings: strict),
    ]
)
