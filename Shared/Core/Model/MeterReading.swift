/// Where a reading came from (the lake's `raw/{source}/` folder and `data_source` rows 1–6).
public enum SourceSystem: String, CaseIterable, Sendable, Codable {
    case solarEdge = "solaredge"
    case enphase
    case sma
    case goodWe = "goodwe"
    case snowflake
    case manual

    /// The `data_source.id` seeded by the migrations.
    public var id: Int {
        switch self {
        case .solarEdge: 1
        case .enphase: 2
        case .sma: 3
        case .goodWe: 4
        case .snowflake: 5
        case .manual: 6
        }
    }

    /// Vendor clouds deliver the fetcher envelope; the others deliver the upload file format.
    public var isVendor: Bool { id <= 4 }
}

/// How a value was obtained.
public enum ReadingQuality: String, CaseIterable, Sendable, Codable {
    /// The source gave the value.
    case measured
    /// We derived it (for example energy integrated from power).
    case estimated
    /// A slot of the requested window the source left empty; energy and power are null.
    case missing
}

/// The canonical reading: one device's values for one interval.
public struct MeterReading: Equatable, Sendable {
    public var sourceSystem: SourceSystem
    public var organizationID: Int64
    public var externalSiteID: String
    /// The device serial or id, or the literal `site` for a site-level series.
    public var externalDeviceID: String
    /// Start of the interval, Unix seconds, UTC.
    public var timestamp: Int64
    public var readingIntervalSeconds: Int
    public var energyWh: Double?
    public var powerW: Double?
    public var irradianceWm2: Double?
    public var temperatureC: Double?
    /// Extra values, in file order; stored as a JSON object.
    public var otherMetrics: [JSONMember]
    public var quality: ReadingQuality
    /// When meterlake ingested it, Unix milliseconds.
    public var ingestedAt: Int64

    public init(
        sourceSystem: SourceSystem, organizationID: Int64, externalSiteID: String, externalDeviceID: String,
        timestamp: Int64, readingIntervalSeconds: Int, energyWh: Double? = nil, powerW: Double? = nil,
        irradianceWm2: Double? = nil, temperatureC: Double? = nil, otherMetrics: [JSONMember] = [],
        quality: ReadingQuality = .measured, ingestedAt: Int64
    ) {
        self.sourceSystem = sourceSystem
        self.organizationID = organizationID
        self.externalSiteID = externalSiteID
        self.externalDeviceID = externalDeviceID
        self.timestamp = timestamp
        self.readingIntervalSeconds = readingIntervalSeconds
        self.energyWh = energyWh
        self.powerW = powerW
        self.irradianceWm2 = irradianceWm2
        self.temperatureC = temperatureC
        self.otherMetrics = otherMetrics
        self.quality = quality
        self.ingestedAt = ingestedAt
    }

    /// `other_metrics` as compact JSON text.
    public var otherMetricsJSON: String { JSONValue.object(otherMetrics).serialized }
}

/// The columns of the upload file format, in their documented order.
public enum CanonicalField: Int, CaseIterable, Sendable {
    case externalSiteID, externalDeviceID, timestamp, readingIntervalSeconds
    case energyWh, powerW, irradianceWm2, temperatureC, quality, utcOffset

    /// The column name (headers match case-insensitively).
    public var name: String {
        switch self {
        case .externalSiteID: "external_site_id"
        case .externalDeviceID: "external_device_id"
        case .timestamp: "timestamp"
        case .readingIntervalSeconds: "reading_interval_seconds"
        case .energyWh: "energy_wh"
        case .powerW: "power_w"
        case .irradianceWm2: "irradiance_wm2"
        case .temperatureC: "temperature_c"
        case .quality: "quality"
        case .utcOffset: "utc_offset"
        }
    }

    /// Columns a file must have.
    public static let required: [CanonicalField] = [.externalSiteID, .externalDeviceID, .timestamp, .readingIntervalSeconds]

    private static let byLowercasedName: [String: CanonicalField] =
        Dictionary(uniqueKeysWithValues: allCases.map { ($0.name, $0) })

    /// The field a column header names, case-insensitively (Snowflake upper-cases names).
    public init?(header: String) {
        // Exact lower-case names are the common case; only other spellings pay for lowercasing.
        if let field = Self.byLowercasedName[header] ?? Self.byLowercasedName[header.lowercased()] {
            self = field
        } else {
            return nil
        }
    }
}
