// An object's main: no top-level `fun main`, so kotlinc writes no Main-Class for a jar.
object Solution {
    @JvmStatic
    fun main(args: Array<String>) {
        val (a, b) = readLine()!!.trim().split(Regex("\\s+")).map { it.toLong() }
        println(a + b)
    }
}
