fun main() {
    val line = readLine()
    if (line != null) {
        println(line)
    }
}
