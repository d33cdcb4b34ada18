import Core
import Store
import Vendors

/// A site a vendor listed, as registered.
public struct RegisteredSite: Sendable, Equatable {
    public var externalSiteID: String
    public var name: String?
    public var timeZone: String?
    /// Why the site waits inactive (no usable zone), or nil when it is fetched.
    public var inactiveReason: String?
    /// Whether this listing added it (false: it was known already).
    public var isNew: Bool
}

/// Stores the sites a vendor lists for a credential: new ones active with the vendor's zone, or
/// (GoodWe gives none) the zone all the credential's other active sites share, else inactive,
/// saying why. Known sites (also under the id a vendor moved them to) are left as they are.
public struct SiteRegistrar {
    let integrations: Integrations
    let vendor: SourceSystem
    let zones: ZoneDatabase

    public init(integrations: Integrations, vendor: SourceSystem, zones: ZoneDatabase) {
        self.integrations = integrations
        self.vendor = vendor
        self.zones = zones
    }

    /// One entry per listed site, in order; `nil` for an id refused (empty, over 200 bytes, control characters).
    public func register(_ listed: [DiscoveredSite], credentialID: Int64, organizationID: Int64) throws -> [RegisteredSite?] {
        let known = try integrations.sites(credentialID: credentialID)
        // A moved site is listed under its new id: it is known, not new.
        let knownIDs = Set(known.map(\.externalSiteID) + known.compactMap(\.apiSiteID))
        let zones = Set(known.filter(\.isActive).map(\.timeZone))
        var registered: [RegisteredSite?] = []
        for site in listed {
            guard !site.externalSiteID.isEmpty, site.externalSiteID.utf8.count <= 200,
                !site.externalSiteID.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F })
            else {
                registered.append(nil)
                continue
            }
            let name = site.name.map { String($0.prefix(200)) }
            if knownIDs.contains(site.externalSiteID) {
                let stored = known.first { $0.externalSiteID == site.externalSiteID || $0.apiSiteID == site.externalSiteID }
                registered.append(RegisteredSite(externalSiteID: site.externalSiteID, name: name, timeZone: stored?.timeZone,
                                                 inactiveReason: stored?.isActive == false ? stored?.lastSyncError ?? "inactive" : nil, isNew: false))
                continue
            }
            var zone = site.timeZone
            var source = "vendor"
            var inactive: String?
            if let named = zone, (try? self.zones.rules(named)) == nil {
                inactive = "the vendor gave the time zone \"\(named.prefix(64))\", which is not an IANA zone here; set one with meterlake site add"
                zone = nil
            } else if zone == nil {
                if zones.count == 1 {
                    zone = zones.first
                    source = "inferred"
                } else {
                    inactive = "\(vendor.rawValue) gives no time zone: set one with `meterlake site add --org \(organizationID) --vendor \(vendor.rawValue) --site \(site.externalSiteID) --time-zone Area/City`"
                }
            }
            let isNew = try integrations.addDiscoveredSite(
                organizationID: organizationID, vendor: vendor, credentialID: credentialID, externalSiteID: site.externalSiteID, name: name,
                timeZone: zone, zoneSource: source, inactiveReason: inactive)
            registered.append(RegisteredSite(externalSiteID: site.externalSiteID, name: name, timeZone: zone, inactiveReason: inactive, isNew: isNew))
        }
        return registered
    }
}
