import Core

/// How many calls a run may make against a daily quota, so that the day's later hourly runs
/// still find theirs: the quota, less a safety margin, less what was used, less a reserve of
/// `perRun` calls for each full hour left in the quota day (UTC).
public enum QuotaPlan {
    public static func allowance(limit: Int, used: Int, now: Int64, perRun: Int, safety: Int = 10) -> Int {
        let secondsLeft = 86_400 - Int(((now % 86_400) + 86_400) % 86_400)
        let laterRuns = (secondsLeft - 1) / 3600
        return max(0, limit - safety - used - laterRuns * perRun)
    }

    /// Calls a run may make under a monthly quota: what is left of the month, shared evenly by
    /// its days left (today included), less what today used already.
    public static func monthlyAllowance(limit: Int, usedBeforeToday: Int, usedToday: Int, now: Int64) -> Int {
        let day = Int(floorDivide(now, 86_400))
        let daysLeft = Timestamp.firstDayOfNextMonth(after: day) - day
        return max(0, (limit - usedBeforeToday) / max(1, daysLeft) - usedToday)
    }
}
