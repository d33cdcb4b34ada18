/// How many calls a run may make against a daily quota, so that the day's later hourly runs
/// still find theirs: the quota, less a safety margin, less what was used, less a reserve of
/// `perRun` calls for each full hour left in the quota day (UTC).
public enum QuotaPlan {
    public static func allowance(limit: Int, used: Int, now: Int64, perRun: Int, safety: Int = 10) -> Int {
        let secondsLeft = 86_400 - Int(((now % 86_400) + 86_400) % 86_400)
        let laterRuns = (secondsLeft - 1) / 3600
        return max(0, limit - safety - used - laterRuns * perRun)
    }
}
